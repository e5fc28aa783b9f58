#include <gtest/gtest.h>

#include "engine/gdal_handles.hpp"
#include "engine/log.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  fw::log::set_level(fw::log::Level::kWarn);
  fw::init_gdal();
  const int rc = RUN_ALL_TESTS();
  GDALDestroy();
  return rc;
}
