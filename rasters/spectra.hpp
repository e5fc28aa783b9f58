// A small library of surface reflectance spectra, band-averaged for Sentinel-2 MSI bands
// B2 (490 nm), B3 (560), B4 (665), B8 (842), B11 (1610) and B12 (2190).
//
// The values are representative surface reflectances (0..1) read from published spectral
// libraries and field studies, not tuned to any rule of ours:
//  - vegetation, soils, water, dry residue: USGS Spectral Library Version 7 (Kokaly et al.,
//    2017, USGS Data Series 1035) and the ECOSTRESS library (Meerdink et al., 2019), band-
//    averaged over the S2 spectral response functions; dry residue and soils follow the
//    cellulose-absorption contrast of Daughtry et al. (2005) (residue: B12 well below B11).
//  - concrete, asphalt, clay tiles: ECOSTRESS "manmade" spectra (construction concrete, asphalt
//    road, terra cotta tile) and Herold et al. (2004, Remote Sens. Environ. 91) urban spectra.
//  - colour-steel (coated steel sheet) roofs, white and blue: the spectra of coated metal roofs in
//    Herold et al. (2004) (painted metal): a blue coating is bright in B2, darker in red, with a
//    pigment-driven NIR plateau and low SWIR, so a blue roof has NDBI below zero, as the
//    Chinese literature on colour-steel-shed (彩钢棚) detection describes.
//  - water: clear and turbid inland water from the USGS library and the turbid-water NIR rise of
//    Doxaran et al. (2002).
//  - cloud: optically thick cloud is flat and bright in the visible and NIR, lower in SWIR (ice
//    and water absorption), as seen in S2 L2A cloudy pixels.
#pragma once

#include <array>
#include <string>

namespace fw::spectra {

constexpr int kBands = 6;  // B2, B3, B4, B8, B11, B12
using Spectrum = std::array<float, kBands>;
inline constexpr std::array<const char*, kBands> kBandNames = {"B2", "B3",  "B4",
                                                               "B8", "B11", "B12"};

enum class Material {
  kGreenCanopy,   // dense green crop / leaf canopy
  kForestCanopy,  // broadleaf and mixed forest canopy
  kGrass,         // grassland, field margins
  kDryResidue,    // stubble, straw and litter
  kDrySoil,       // dry loam
  kWetSoil,       // moist, freshly turned soil
  kLoess,         // bright yellow-brown subsoil dug up by excavation
  kConcrete,      // new concrete, hardened ground
  kAsphalt,       // asphalt road
  kClayTile,      // red clay tile roofs of village houses
  kWhiteSteel,    // white colour-steel sheet roof
  kBlueSteel,     // blue colour-steel sheet roof
  kClearWater,    // clear inland water
  kTurbidWater,   // turbid, sediment-laden water (new ponds)
  kCloud,         // optically thick cloud
  kCount
};

const Spectrum& of(Material m);
const char* name(Material m);

// Linear mixture a*(1-f) + b*f.
inline Spectrum mix(const Spectrum& a, const Spectrum& b, float f) {
  Spectrum r;
  for (int i = 0; i < kBands; ++i) r[i] = a[i] + (b[i] - a[i]) * f;
  return r;
}

}  // namespace fw::spectra
