// The small synthetic scene the run tests share, and pipeline files on it.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "pipelines/synth.hpp"
#include "tests/test_util.hpp"

namespace fw::test {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fixture base with a 384 x 384 scene (80 parcels, seed 3) made once per suite (about a
// second), in scene().
template <class Base>
class WithRunScene : public Base {
 protected:
  static void SetUpTestSuite() {
    scene_ = new TempDir();
    synth::Options o;
    o.out = *scene_ / "scene";
    o.width = o.height = 384;
    o.parcels = 80;
    o.seed = 3;
    synth::generate(o);
  }
  static void TearDownTestSuite() {
    delete scene_;
    scene_ = nullptr;
  }
  static std::string scene() { return *scene_ / "scene"; }
  // Pipeline text on the scene into `out`; the later date's `after_date` when given, then `extra`
  // (more top-level sections).
  static std::string scene_pipeline(const std::string& out, const std::string& after_date = "",
                                    const std::string& extra = "") {
    const std::string s = scene();
    std::ostringstream t;
    t << "inputs:\n  before:\n    files: [" << s << "/date1.tif]\n    mask: " << s
      << "/date1_scl.tif\n  after:\n    files: [" << s << "/date2.tif]\n    mask: " << s
      << "/date2_scl.tif\n";
    if (!after_date.empty()) t << "    date: " << after_date << "\n";
    t << "  parcels:\n    file: " << s << "/parcels.gpkg\n  zones:\n    file: " << s
      << "/zones.geojson\noutputs:\n  dir: " << out << "\n"
      << extra;
    return t.str();
  }
  static inline TempDir* scene_ = nullptr;
};

}  // namespace fw::test
