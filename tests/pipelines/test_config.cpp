// Pipeline validation: each kind of mistake is reported with the file, line and column of the
// offending text (or the --set that made it), all problems at once, before any work.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "pipelines/config.hpp"
#include "pipelines/stages.hpp"
#include "tests/test_util.hpp"

namespace fw {
namespace {

using pipelines::PipelineError;
using pipelines::Problem;

class Config : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* f : {"d1.tif", "d2.tif", "parcels.gpkg", "scl1.tif"})
      std::ofstream(dir_ / f) << "x";
  }
  // A valid pipeline whose line `line` (1-based) is replaced by `text` ("" = kept).
  std::string pipeline(int line = 0, const std::string& text = "") const {
    std::vector<std::string> lines = {
        "inputs:",                 // 1
        "  before:",               // 2
        "    files: [d1.tif]",     // 3
        "    mask: scl1.tif",      // 4
        "    bands: red=3,nir=4",  // 5
        "  after:",                // 6
        "    files: d2.tif",       // 7
        "  parcels:",              // 8
        "    file: parcels.gpkg",  // 9
        "steps:",                  // 10
        "  change:",               // 11
        "    method: diff",        // 12
        "    mad_k: 5",            // 13
        "  patches:",              // 14
        "    mmu: 0.6mu",          // 15
        "  indices:",              // 16
        "    list: [ndvi, ndbi]",  // 17
        "outputs:",                // 18
        "  dir: out",              // 19
    };
    if (line > 0) lines[static_cast<std::size_t>(line - 1)] = text;
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
  std::vector<Problem> problems(const std::string& text,
                                const std::vector<std::string>& sets = {}) const {
    const std::string path = dir_ / "p.yaml";
    std::ofstream(path) << text;
    try {
      pipelines::load_pipeline(path, sets);
    } catch (const PipelineError& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
      return e.problems();
    }
    return {};
  }
  // Exactly one problem, at `line` of p.yaml, whose message contains `what`.
  void expect_one(const std::string& text, int line, const std::string& what) const {
    const auto ps = problems(text);
    ASSERT_EQ(ps.size(), 1u) << text;
    EXPECT_EQ(ps[0].where.file, dir_ / "p.yaml");
    EXPECT_EQ(ps[0].where.line, line) << ps[0].text();
    EXPECT_GT(ps[0].where.column, 0);
    EXPECT_NE(ps[0].message.find(what), std::string::npos) << ps[0].text();
    EXPECT_EQ(ps[0].text().rfind(dir_ / "p.yaml" + ":" + std::to_string(line) + ":", 0), 0u);
  }
  test::TempDir dir_;
};

TEST_F(Config, AValidPipelineLoadsWithDefaultsAndResolvedPaths) {
  const std::string path = dir_ / "p.yaml";
  std::ofstream(path) << pipeline();
  const auto c = pipelines::load_pipeline(path);
  EXPECT_EQ(c.paths("inputs.before.files"), std::vector<std::string>{dir_ / "d1.tif"});
  EXPECT_EQ(c.paths("inputs.after.files"), std::vector<std::string>{dir_ / "d2.tif"});
  EXPECT_EQ(c.str("steps.change.threshold"), "mad");  // default
  EXPECT_FALSE(c.given("steps.change.threshold"));
  EXPECT_EQ(c.num("steps.change.mad_k"), 5);
  EXPECT_TRUE(c.flag("steps.change.cover"));
  EXPECT_EQ(c.list("steps.indices.list"), (std::vector<std::string>{"ndvi", "ndbi"}));
  EXPECT_EQ(c.path("outputs.dir"), dir_ / "out");
  EXPECT_EQ(c.origin("steps.change.mad_k").line, 13);
  // --set overrides a key, and the origin says so.
  const auto d =
      pipelines::load_pipeline(path, {"steps.change.mad_k=7", "steps.zonal.coverage=center"});
  EXPECT_EQ(d.num("steps.change.mad_k"), 7);
  EXPECT_EQ(d.str("steps.zonal.coverage"), "center");
  EXPECT_EQ(d.origin("steps.change.mad_k").file, "--set steps.change.mad_k=7");
  // JSON is YAML.
  std::ofstream(dir_ / "p.json") << R"({"inputs": {"before": {"files": ["d1.tif"]},
      "after": {"files": ["d2.tif"]}, "parcels": {"file": "parcels.gpkg"}}})";
  EXPECT_EQ(pipelines::load_pipeline(dir_ / "p.json").str("steps.change.method"), "diff");
}

TEST_F(Config, EveryKindOfMistakeNamesFileLineAndColumn) {
  // 1. Not YAML.
  expect_one(pipeline(17, "    list: [ndvi, ndbi"), 18, "not valid YAML");
  // 2. An unknown key, with the nearest known one.
  expect_one(pipeline(12, "    methd: diff"), 12, "did you mean 'method'");
  // 3. A number that is not one.
  expect_one(pipeline(13, "    mad_k: five"), 13, "expected a number");
  // 4. A number out of range.
  expect_one(pipeline(13, "    mad_k: 0.1"), 13, "from 0.5 to 50");
  // 5. A word outside its choices.
  expect_one(pipeline(12, "    method: magic"), 12, "expected one of diff, cva, irmad");
  // 6. A file that does not exist.
  expect_one(pipeline(9, "    file: nowhere.gpkg"), 9, "file not found");
  // 7. A bad band map.
  expect_one(pipeline(5, "    bands: red=3,nir"), 5, "nir");
  // 8. A band map naming an unknown role.
  expect_one(pipeline(5, "    bands: red=3,infrared=4"), 5, "unknown role 'infrared'");
  // 9. An unknown index in a list (the item's own line and column).
  expect_one(pipeline(17, "    list: [ndvi, ndvx]"), 17, "ndvx");
  // 10. A rule naming an unknown category.
  expect_one(pipeline(15, "    priority_rules: ['P1: category in housing, area_mu >= 1']"), 15,
             "housing");
  // 11. A priority rule with an unknown variable.
  expect_one(pipeline(15, "    priority_rules: ['P1: size > 3']"), 15, "unknown variable");
  // 12. A bad minimum mapping unit.
  expect_one(pipeline(15, "    mmu: big"), 15, "mu");
  // 13. A true/false that is neither.
  expect_one(pipeline(13, "    cover: perhaps"), 13, "expected true or false");
  // 14. A section given a single value.
  expect_one(pipeline(19, "  dir: out\ngrid: 10"), 20, "is a section");
  // 15. A single value given a list.
  expect_one(pipeline(12, "    method: [diff, cva]"), 12, "got a list");
  // 16. A required key missing: reported at its section.
  expect_one(pipeline(9, "    layer: fields"), 8, "missing required key 'inputs.parcels.file'");
  // 17. A category rule naming an unknown category.
  expect_one(pipeline(13, "    mad_k: 5\n  classify:\n    rules: ['concrete: ndbi1 > 0']"), 15,
             "concrete");
}

TEST_F(Config, AllProblemsAtOnceAndSetOverridesBlamed) {
  std::string t = pipeline(13, "    mad_k: x");
  t += "colour: red\n";
  const auto ps = problems(t);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].where.line, 13);
  EXPECT_EQ(ps[1].where.line, 20);
  EXPECT_NE(ps[1].message.find("unknown key 'colour'"), std::string::npos);
  const auto qs = problems(pipeline(), {"steps.change.mad_k=abc"});
  ASSERT_EQ(qs.size(), 1u);
  EXPECT_EQ(qs[0].where.file, "--set steps.change.mad_k=abc");
  EXPECT_NE(qs[0].message.find("expected a number"), std::string::npos);
  EXPECT_EQ(problems(pipeline(), {"nonsense"}).size(), 1u);
  // A list root.
  const auto rs = problems("- a\n- b\n");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_NE(rs[0].message.find("expected a map"), std::string::npos);
}

TEST_F(Config, EveryStageOptionIsDocumentedAndRegisteredOnce) {
  std::set<std::string> keys, names;
  for (const auto& s : pipelines::stages()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_FALSE(s.doc.empty()) << s.name;
    for (const auto& o : s.options) {
      EXPECT_TRUE(keys.insert(o.key).second) << o.key;
      EXPECT_FALSE(o.doc.empty()) << o.key;
    }
  }
  for (const char* n :
       {"readers", "indices", "change", "classify", "zonal", "patches", "report", "writers"})
    EXPECT_TRUE(pipelines::find_stage(n)) << n;
  // docs/pipeline.md documents every key.
  std::ifstream in(std::string(FW_SOURCE_DIR) + "/docs/pipeline.md");
  std::stringstream ss;
  ss << in.rdbuf();
  for (const auto& k : keys) {
    const std::string leaf = k.substr(k.rfind('.') + 1);
    EXPECT_NE(ss.str().find("`" + k + "`"), std::string::npos) << k << " not in docs/pipeline.md";
  }
}

}  // namespace
}  // namespace fw
