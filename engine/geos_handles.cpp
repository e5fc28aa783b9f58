#include "engine/geos_handles.hpp"

#include <cstdarg>
#include <cstdio>
#include <string>

#include "engine/log.hpp"

namespace fw::geos {
namespace {

void notice(const char* msg, void*) {
  log::debug(std::string("GEOS: ") + (msg ? msg : ""));
}
void error(const char* msg, void*) {
  log::debug(std::string("GEOS error: ") + (msg ? msg : ""));
}

struct ThreadContext {
  GEOSContextHandle_t handle;
  ThreadContext() : handle(GEOS_init_r()) {
    GEOSContext_setNoticeMessageHandler_r(handle, notice, nullptr);
    GEOSContext_setErrorMessageHandler_r(handle, error, nullptr);
  }
  ~ThreadContext() { GEOS_finish_r(handle); }
  ThreadContext(const ThreadContext&) = delete;
  ThreadContext& operator=(const ThreadContext&) = delete;
};

}  // namespace

GEOSContextHandle_t context() {
  thread_local ThreadContext ctx;
  return ctx.handle;
}

void GeomDeleter::operator()(GEOSGeometry* g) const {
  if (g) GEOSGeom_destroy_r(context(), g);
}

}  // namespace fw::geos
