// QGIS styles for a run folder, so QGIS opens the outputs styled: a paletted .qml (class
// colours and names, from the raster's own colour table and category names) beside each class
// raster, a categorized .qml beside each vector output (priority and alert colours), and the
// same styles as the default ones of the GeoPackage's layers (its layer_styles table, which
// QGIS reads).
#pragma once

#include <string>

namespace fw::pipelines {

// The paletted style of a one-band class raster with a colour table (category names as labels).
std::string raster_palette_qml(const std::string& raster);
// Categorized fill styles: patches by `priority`, parcels by `alert_level`.
std::string patches_qml();
std::string parcels_qml();

// Writes the styles of the outputs present in `dir`. Throws fw::Error (output).
void write_styles(const std::string& dir);

}  // namespace fw::pipelines
