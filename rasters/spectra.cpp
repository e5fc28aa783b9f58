#include "rasters/spectra.hpp"

namespace fw::spectra {
namespace {

//                                       B2     B3     B4     B8     B11    B12
constexpr std::array<Spectrum, static_cast<int>(Material::kCount)> kTable = {{
    /* green canopy   */ {0.030f, 0.075f, 0.040f, 0.420f, 0.210f, 0.100f},
    /* forest canopy  */ {0.025f, 0.055f, 0.030f, 0.330f, 0.160f, 0.075f},
    /* grass          */ {0.040f, 0.080f, 0.060f, 0.300f, 0.230f, 0.130f},
    /* dry residue    */ {0.080f, 0.110f, 0.140f, 0.230f, 0.310f, 0.210f},
    /* dry soil       */ {0.095f, 0.135f, 0.180f, 0.240f, 0.330f, 0.285f},
    /* wet soil       */ {0.055f, 0.080f, 0.110f, 0.150f, 0.210f, 0.180f},
    /* loess          */ {0.120f, 0.175f, 0.245f, 0.300f, 0.390f, 0.345f},
    /* concrete       */ {0.210f, 0.240f, 0.260f, 0.290f, 0.320f, 0.290f},
    /* asphalt        */ {0.065f, 0.075f, 0.085f, 0.105f, 0.130f, 0.120f},
    /* clay tile      */ {0.075f, 0.095f, 0.190f, 0.270f, 0.330f, 0.265f},
    /* white steel    */ {0.440f, 0.460f, 0.470f, 0.490f, 0.410f, 0.340f},
    /* blue steel     */ {0.270f, 0.210f, 0.130f, 0.290f, 0.170f, 0.115f},
    /* clear water    */ {0.060f, 0.050f, 0.030f, 0.015f, 0.008f, 0.005f},
    /* turbid water   */ {0.080f, 0.100f, 0.090f, 0.045f, 0.015f, 0.010f},
    /* cloud          */ {0.560f, 0.550f, 0.560f, 0.600f, 0.450f, 0.330f},
}};

constexpr std::array<const char*, static_cast<int>(Material::kCount)> kNames = {
    "green_canopy", "forest_canopy", "grass",       "dry_residue",  "dry_soil",
    "wet_soil",     "loess",         "concrete",    "asphalt",      "clay_tile",
    "white_steel",  "blue_steel",    "clear_water", "turbid_water", "cloud"};

}  // namespace

const Spectrum& of(Material m) {
  return kTable[static_cast<int>(m)];
}
const char* name(Material m) {
  return kNames[static_cast<int>(m)];
}

}  // namespace fw::spectra
