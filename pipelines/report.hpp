// The run's human report: report.html, self-contained (images embedded), with the summary by
// category, intensity, priority and township, the quick-look map, and the most urgent patches
// with their evidence chips; and quicklook.png, the change map with the patch outlines.
#pragma once

#include <string>

namespace fw::pipelines {

struct RunContext;

// Writes quicklook.png and report.html into the run folder. Throws fw::Error (output).
void write_report(RunContext& run);

// Standard base64 (RFC 4648) of `data`.
std::string base64(const std::string& data);

}  // namespace fw::pipelines
