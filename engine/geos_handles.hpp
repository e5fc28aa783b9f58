// GEOS: one reentrant context per thread (created on first use, finished when the thread ends)
// and an owning pointer for GEOS geometries.
#pragma once

#include <geos_c.h>

#include <memory>

namespace fw::geos {

// This thread's context; its notices and errors go to our log.
GEOSContextHandle_t context();

struct GeomDeleter {
  void operator()(GEOSGeometry* g) const;
};
using GeomPtr = std::unique_ptr<GEOSGeometry, GeomDeleter>;

// Owns the result of a GEOS call; null stays null.
inline GeomPtr own(GEOSGeometry* g) {
  return GeomPtr(g);
}

}  // namespace fw::geos
