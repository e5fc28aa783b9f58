# farmwatch: two commands from a fresh Debian 12 machine.
#   make demo   sets everything up, builds, and runs farmwatch on a synthetic scene
#   make test   sets everything up, builds, and runs the unit tests (plain and ASan+UBSan builds)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
DEMO_OUT ?= demo
CMAKE_FLAGS ?=

.PHONY: all bootstrap build check asan test demo bench format clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

# Unit tests on the RelWithDebInfo build.
check: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, leak checking on.
asan: bootstrap
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFW_SANITIZE=ON -DFW_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

test: check asan

demo: build
	./$(BUILD)/cli/farmwatch info
	./$(BUILD)/cli/farmwatch synth --out $(DEMO_OUT)/scene --size 2048 --parcels 2000 --seed 1
	./$(BUILD)/cli/farmwatch indices --input $(DEMO_OUT)/scene/date2.tif --mask $(DEMO_OUT)/scene/date2_scl.tif \
	    --index ndvi,ndbi,mndwi,bsi --out $(DEMO_OUT)/indices_date2
	./$(BUILD)/cli/farmwatch change --before $(DEMO_OUT)/scene/date1.tif --after $(DEMO_OUT)/scene/date2.tif \
	    --mask-before $(DEMO_OUT)/scene/date1_scl.tif --mask-after $(DEMO_OUT)/scene/date2_scl.tif \
	    --mask-buffer 2 --cover --out $(DEMO_OUT)/change
	./$(BUILD)/cli/farmwatch indices --input $(DEMO_OUT)/scene/date1.tif --mask $(DEMO_OUT)/scene/date1_scl.tif \
	    --index ndvi --out $(DEMO_OUT)/indices_date1
	./$(BUILD)/cli/farmwatch indicators --parcels $(DEMO_OUT)/scene/parcels.gpkg \
	    --ndvi-before $(DEMO_OUT)/indices_date1/ndvi.tif --ndvi-after $(DEMO_OUT)/indices_date2/ndvi.tif \
	    --change-class $(DEMO_OUT)/change/change_class.tif --change-cover $(DEMO_OUT)/change/change_cover.tif \
	    --out $(DEMO_OUT)/parcels.gpkg \
	    --summary $(DEMO_OUT)/summary.csv
	./$(BUILD)/cli/farmwatch patches --change-class $(DEMO_OUT)/change/change_class.tif \
	    --parcels $(DEMO_OUT)/scene/parcels.gpkg --zones $(DEMO_OUT)/scene/zones.geojson \
	    --index-before $(DEMO_OUT)/indices_date1/ndvi.tif --index-after $(DEMO_OUT)/indices_date2/ndvi.tif \
	    --before $(DEMO_OUT)/scene/date1.tif --after $(DEMO_OUT)/scene/date2.tif --out $(DEMO_OUT)/patches
	@echo
	@echo "Open in QGIS (Layer > Add Layer > Add Raster/Vector Layer): $(DEMO_OUT)/change/change_class.tif"
	@echo "(coloured by category), $(DEMO_OUT)/indices_date2/ndvi.tif, $(DEMO_OUT)/scene/date2.tif and"
	@echo "$(DEMO_OUT)/scene/parcels.gpkg; $(DEMO_OUT)/scene/truth.json lists the planted changes and"
	@echo "$(DEMO_OUT)/change/change_stats.json the areas found per category; $(DEMO_OUT)/parcels.gpkg"
	@echo "holds every parcel's NDVI, encroachment and alert level, $(DEMO_OUT)/summary.csv the totals"
	@echo "by township and village; $(DEMO_OUT)/patches/patches.gpkg the change patches with their"
	@echo "priority, and $(DEMO_OUT)/patches/chips/ the before/after images of the P1 and P2 ones."

bench: build
	bash bench/run_bench.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
