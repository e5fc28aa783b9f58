// History and timeliness: dates; a four-run sequence with planted cases (appearing, growing,
// disappearing, hidden by clouds, merging, changing category within a family) asserted per case;
// the verification round trip; schema migration; the store lock. Every store test runs on a
// GeoPackage and on PostgreSQL + PostGIS (FW_TEST_PG: a "PG:..." connection string; skipped when
// unset, failing when set and unreachable).
#include <gtest/gtest.h>
#include <ogrsf_frmts.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include "engine/error.hpp"
#include "engine/gdal_handles.hpp"
#include "engine/grid.hpp"
#include "pipelines/history.hpp"
#include "pipelines/history_store.hpp"
#include "pipelines/run.hpp"
#include "pipelines/synth.hpp"
#include "tests/pipelines/history_util.hpp"
#include "tests/pipelines/scene_util.hpp"
#include "tests/test_util.hpp"

extern char** environ;

namespace fw {
namespace {

namespace h = pipelines::history;
using test::slurp;

TEST(HistoryDates, ParseFormatAndArithmetic) {
  EXPECT_EQ(h::parse_date("1970-01-01"), 0);
  EXPECT_EQ(h::parse_date("2026-01-01"), 20454);
  EXPECT_EQ(h::parse_date("2024-03-01") - h::parse_date("2024-02-01"), 29);  // leap year
  EXPECT_EQ(h::parse_date("2025-03-01") - h::parse_date("2025-02-01"), 28);
  EXPECT_EQ(h::format_date(h::parse_date("2026-02-01") + 90), "2026-05-02");
  EXPECT_EQ(h::format_date(-1), "1969-12-31");
  for (const char* bad : {"2025-02-29", "2025-13-01", "2025-1-01", "20250101", "2025-04-31", ""})
    EXPECT_THROW(h::parse_date(bad), Error) << bad;
  EXPECT_EQ(h::parse_due_days("7,30,90"), (std::array<int, 3>{7, 30, 90}));
  EXPECT_THROW(h::parse_due_days("7,30"), Error);
  std::map<std::string, std::string> fam;
  h::parse_family("built_up: construction|bare_soil", fam);
  EXPECT_EQ(fam["bare_soil"], "built_up");
  EXPECT_THROW(h::parse_family("nothing", fam), Error);
  EXPECT_EQ(h::display_name("PG:host=db password=s3cret dbname=farm"),
            "PG:host=db password=*** dbname=farm");
  EXPECT_EQ(h::display_name("{\"history.store\": \"PG:password=x\"}"),
            "{\"history.store\": \"PG:password=***\"}");
}

class History : public test::WithStore<::testing::TestWithParam<std::string>> {
 protected:
  // Runs one date of the planted sequence.
  h::Result run(int k) {
    const test::Planted p = test::planted_run(k, dir_);
    h::Settings s;
    s.store = where_;
    s.run_date = p.date;
    s.family = h::default_families();
    h::RunInput in;
    in.run_key = "key-" + std::to_string(k);
    in.patches = &p.set;
    in.change_class = p.change_class;
    in.parcels = &p.parcels;
    in.indicators = &p.indicators;
    return h::record_run(s, in);
  }
  static const h::Observation& at(const h::Result& r, const std::string& track) {
    for (const auto& o : r.observations) {
      if (o.track_id == track) return o;
    }
    static h::Observation none;
    ADD_FAILURE() << "no case " << track;
    return none;
  }
};

// Case ids: the first date and the first patch's id.
const std::string A = "T20260101-A", C = "T20260101-C", D = "T20260101-D", F1 = "T20260101-F1",
                  F2 = "T20260101-F2", B = "T20260201-B";

TEST_P(History, FourRunsGiveTheExpectedStatusesConfidenceAndDueDates) {
  // Run 1 (2026-01-01): A, C, D, F1, F2 appear.
  auto r = run(1);
  EXPECT_EQ(r.run_id, 1);
  ASSERT_EQ(r.observations.size(), 5u);
  for (const auto& o : r.observations) {
    EXPECT_EQ(o.status, "new") << o.track_id;
    EXPECT_EQ(o.confidence, "low") << o.track_id;
    EXPECT_EQ(o.days_open, 0);
    EXPECT_FALSE(o.overdue);
    EXPECT_TRUE(o.alert);
  }
  EXPECT_EQ(at(r, A).due_date, "2026-01-31");  // P2: 30 days
  EXPECT_EQ(at(r, C).due_date, "2026-01-08");  // P1: 7 days
  EXPECT_EQ(at(r, D).due_date, "2026-04-01");  // P3: 90 days
  EXPECT_EQ(r.counts.new_cases, 5);
  EXPECT_EQ(r.counts.open, 5);
  EXPECT_EQ(r.by_patch.at("C"), 1u);

  // Run 2 (2026-02-01): A doubles; C is built on (bare soil -> construction, one family);
  // D is gone under a clear sky; F1 and F2 grow into one patch; B appears.
  r = run(2);
  EXPECT_EQ(r.run_id, 2);
  EXPECT_EQ(at(r, A).status, "expanded");
  EXPECT_DOUBLE_EQ(at(r, A).area_m2, 20000);
  EXPECT_DOUBLE_EQ(at(r, A).previous_area_m2, 10000);
  EXPECT_EQ(at(r, A).confidence, "high");
  EXPECT_TRUE(at(r, A).overdue);  // due 2026-01-31
  EXPECT_EQ(at(r, A).days_open, 31);
  EXPECT_EQ(at(r, C).status, "persisting");
  EXPECT_EQ(at(r, C).category, "construction");
  EXPECT_EQ(at(r, C).patch_id, "C");
  EXPECT_TRUE(at(r, C).overdue);
  EXPECT_EQ(at(r, D).status, "resolved");
  EXPECT_DOUBLE_EQ(at(r, D).observed_fraction, 1.0);
  EXPECT_FALSE(at(r, D).overdue);
  EXPECT_FALSE(at(r, D).alert);
  EXPECT_EQ(at(r, F1).status, "expanded");
  EXPECT_EQ(at(r, F1).patch_id, "F");
  EXPECT_EQ(at(r, F2).status, "merged");
  EXPECT_EQ(at(r, B).status, "new");
  EXPECT_EQ(at(r, B).due_date, "2026-05-02");  // P3, from 2026-02-01
  EXPECT_EQ(r.counts.new_cases, 1);
  EXPECT_EQ(r.counts.persisting, 1);
  EXPECT_EQ(r.counts.expanded, 2);
  EXPECT_EQ(r.counts.resolved, 1);
  EXPECT_EQ(r.counts.merged, 1);
  EXPECT_EQ(r.counts.open, 4);  // A, B, C, F1
  EXPECT_EQ(r.counts.overdue, 2);

  // Run 3 (2026-03-01): clouds over B; A, C and F persist.
  r = run(3);
  EXPECT_EQ(at(r, B).status, "unobserved");
  EXPECT_DOUBLE_EQ(at(r, B).observed_fraction, 0.0);
  EXPECT_EQ(at(r, B).confidence, "low");
  EXPECT_EQ(at(r, B).days_open, 28);
  EXPECT_TRUE(at(r, B).alert);
  EXPECT_EQ(at(r, A).status, "persisting");
  EXPECT_EQ(at(r, A).confidence, "highest");
  EXPECT_EQ(at(r, A).days_open, 59);
  EXPECT_EQ(at(r, F1).confidence, "highest");
  EXPECT_EQ(at(r, C).times_seen, 3);
  EXPECT_EQ(r.counts.unobserved, 1);
  EXPECT_EQ(r.counts.open, 4);

  // Run 4 (2026-04-01): A and F gone, B seen again (its streak survived the clouds).
  r = run(4);
  EXPECT_EQ(at(r, A).status, "resolved");
  EXPECT_EQ(at(r, F1).status, "resolved");
  EXPECT_EQ(at(r, B).status, "persisting");
  EXPECT_EQ(at(r, B).confidence, "high");
  EXPECT_EQ(at(r, B).times_seen, 2);
  EXPECT_FALSE(at(r, B).overdue);  // due 2026-05-02
  EXPECT_EQ(at(r, B).days_open, 59);
  EXPECT_EQ(at(r, C).status, "persisting");
  EXPECT_EQ(at(r, C).confidence, "highest");
  EXPECT_EQ(at(r, C).times_seen, 4);
  EXPECT_EQ(at(r, C).days_open, 90);
  EXPECT_TRUE(at(r, C).overdue);
  EXPECT_EQ(r.counts.persisting, 2);
  EXPECT_EQ(r.counts.resolved, 2);
  EXPECT_EQ(r.counts.open, 2);
  EXPECT_EQ(r.counts.overdue, 1);
  EXPECT_EQ(r.observations.size(), 4u);  // closed cases are not touched again

  // The patch outputs' columns for this run's patch C.
  const auto v = h::patch_values(r, "C");
  const auto& f = h::patch_fields();
  ASSERT_EQ(v.size(), f.size());
  std::map<std::string, std::string> byname;
  for (std::size_t i = 0; i < f.size(); ++i) byname[f[i].name] = v[i];
  EXPECT_EQ(byname["track_id"], C);
  EXPECT_EQ(byname["first_seen"], "2026-01-01");
  EXPECT_EQ(byname["due_date"], "2026-01-08");
  EXPECT_EQ(byname["overdue"], "1");
  EXPECT_EQ(byname["confidence"], "highest");

  // Per parcel: the planted parcel under the run-3 clouds was blocked once, then seen.
  auto st = h::Store::open_existing(where_, false);
  EXPECT_EQ(st->count("fw_runs"), 4);
  EXPECT_EQ(st->count("fw_observations"), 5 + 6 + 4 + 4);
  EXPECT_EQ(st->count("fw_parcel_series"), 4 * 3);
  const auto p3 = st->load_parcels(3);
  ASSERT_EQ(p3.size(), 3u);
  EXPECT_EQ(p3[1].parcel_id, "P2");
  EXPECT_TRUE(p3[1].cloud_blocked);
  EXPECT_EQ(p3[1].blocked_runs, 1);
  EXPECT_FALSE(p3[0].cloud_blocked);
  EXPECT_EQ(st->load_parcels(4)[1].blocked_runs, 0);

  // The history moves forward only; a run already recorded is read back, not recorded again.
  try {
    test::Planted p = test::planted_run(4, dir_);
    h::Settings s;
    s.store = where_;
    s.run_date = "2026-03-15";
    h::RunInput in;
    in.run_key = "another";
    in.patches = &p.set;
    in.change_class = p.change_class;
    h::record_run(s, in);
    ADD_FAILURE() << "a run dated before the last one was recorded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(e.message().find("2026-04-01"), std::string::npos) << e.message();
  }
  st.reset();
  const auto again = run(2);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.run_id, 2);
  EXPECT_EQ(at(again, F2).status, "merged");
  EXPECT_EQ(again.counts.expanded, 2);
  EXPECT_EQ(h::Store::open_existing(where_, false)->count("fw_runs"), 4);
}

TEST_P(History, TheStoreIsLockedWhileARunWritesIt) {
  run(1);
  auto first = h::Store::open_existing(where_, true);
  try {
    h::Store::open_existing(where_, true);
    ADD_FAILURE() << "two writers";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kLocked) << e.what();
  }
  EXPECT_NO_THROW(h::Store::open_existing(where_, false));  // readers go ahead
  first.reset();
  EXPECT_NO_THROW(h::Store::open_existing(where_, true));
}

TEST_P(History, VerificationRoundTrip) {
  run(1);
  run(2);
  // Export the open cases: A, B, C, F1.
  const std::string exported = dir_ / "verify.geojson";
  EXPECT_EQ(h::export_verification(where_, exported, false).cases, 4);
  const std::string dump0 = test::dump_store(where_);

  // An inspector fills it in; first with mistakes: nothing is applied.
  const std::string bad = dir_ / "bad.geojson";
  test::fill_verification(exported, bad,
                          {{A, {"confirmed", "maybe", "王工", "2026-02-10", ""}},
                           {B, {"false_alarm", "", "王工", "2026-02-30", ""}},
                           {C, {"sure", "no", "", "", ""}},
                           {"T19990101-X", {"confirmed", "no", "", "", ""}}});
  try {
    h::import_verification(where_, bad);
    ADD_FAILURE() << "a bad file was imported";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    const std::string m = e.message();
    EXPECT_NE(m.find("4 problem(s); nothing was imported"), std::string::npos) << m;
    EXPECT_NE(m.find("legal 'maybe'"), std::string::npos) << m;
    EXPECT_NE(m.find("no such day as '2026-02-30'"), std::string::npos) << m;
    EXPECT_NE(m.find("verification_result 'sure'"), std::string::npos) << m;
    EXPECT_NE(m.find("unknown track_id 'T19990101-X'"), std::string::npos) << m;
    EXPECT_NE(std::string(e.what()).find("bad.geojson"), std::string::npos) << e.what();
  }
  EXPECT_EQ(test::dump_store(where_), dump0);

  // The corrected file: A is an illegal building (the case goes on), B was a false alarm, C was
  // approved (legal; Chinese values accepted), F1 not filled in.
  const std::string good = dir_ / "good.geojson";
  test::fill_verification(exported, good,
                          {{A, {"confirmed", "no", "王工", "2026-02-10", "村民自建"}},
                           {B, {"不属实", "", "王工", "2026/02/11", "云影"}},
                           {C, {"属实", "合法", "李工", "2026-02-12", "设施农用地备案"}}});
  const auto rep = h::import_verification(where_, good);
  EXPECT_EQ(rep.applied, 3);
  EXPECT_EQ(rep.closed, 2);
  EXPECT_EQ(rep.unchanged, 1);
  auto st = h::Store::open_existing(where_, false);
  std::map<std::string, h::Track> t;
  for (auto& x : st->load_tracks(true)) t[x.track_id] = std::move(x);
  EXPECT_EQ(t[A].legal, "no");
  EXPECT_FALSE(t[A].suppressed);
  EXPECT_EQ(t[A].remarks, "村民自建");
  EXPECT_TRUE(t[B].suppressed);
  EXPECT_EQ(t[B].verification_result, "false_alarm");
  EXPECT_EQ(t[B].verified_at, "2026-02-11");
  EXPECT_TRUE(t[C].suppressed);
  EXPECT_EQ(t[C].legal, "yes");
  EXPECT_EQ(t[C].verified_by, "李工");
  EXPECT_EQ(st->count("fw_verifications"), 3);
  st.reset();
  // The open cases to verify now: A and F1.
  EXPECT_EQ(h::export_verification(where_, dir_ / "v2.csv", false).cases, 2);

  // Next run: C is detected again but is legal: not alerted, no due date pressure.
  const auto r = run(3);
  const auto& c = at(r, C);
  EXPECT_EQ(c.status, "verified");
  EXPECT_FALSE(c.alert);
  EXPECT_FALSE(c.overdue);
  EXPECT_EQ(c.legal, "yes");
  EXPECT_EQ(at(r, A).status, "persisting");
  EXPECT_TRUE(at(r, A).alert);
  EXPECT_TRUE(at(r, A).overdue);
  EXPECT_EQ(r.counts.verified, 1);
  EXPECT_EQ(r.counts.open, 2);  // A, F1 (B and C closed by verification)
  bool seen_b = false;
  for (const auto& o : r.observations) seen_b |= o.track_id == B;
  EXPECT_FALSE(seen_b);  // a false alarm hidden by clouds is no longer followed

  // A file without track ids names the missing column.
  std::ofstream(dir_ / "no_ids.csv") << "id,legal\n1,yes\n";
  try {
    h::import_verification(where_, dir_ / "no_ids.csv");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("track_id"), std::string::npos) << e.what();
  }
}

TEST_P(History, OldStoresAreMigratedAndNewerOnesRefused) {
  {
    auto v1 = h::Store::open(where_, Crs::from_epsg(32650), 1);
    EXPECT_EQ(v1->schema_version(), 1);
  }
  test::insert_v1_track(where_, "T20250101-OLD");
  {
    auto st = h::Store::open(where_, Crs{});
    EXPECT_EQ(st->schema_version(), h::kSchemaVersion);
    const auto tr = st->load_tracks(true);
    ASSERT_EQ(tr.size(), 1u);
    EXPECT_EQ(tr[0].track_id, "T20250101-OLD");
    EXPECT_EQ(tr[0].legal, "");
    EXPECT_EQ(st->count("fw_parcel_series"), 0);
  }
  test::set_schema_version(where_, 99);
  try {
    h::Store::open(where_, Crs{});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(e.message().find("schema version 99"), std::string::npos) << e.message();
  }
}

// A GeoPackage of someone else's layers (the parcels, say) is never written into.
TEST(HistoryStore, RefusesAGeoPackageOfOtherLayers) {
  test::TempDir d;
  const std::string other = d / "parcels.gpkg";
  {
    init_gdal();
    DatasetPtr ds(driver("GPKG").Create(other.c_str(), 0, 0, 0, GDT_Unknown, nullptr));
    ASSERT_NE(ds->CreateLayer("parcels", nullptr, wkbPolygon, nullptr), nullptr);
  }
  const auto size = std::filesystem::file_size(other);
  try {
    h::Store::open(other, Crs::from_epsg(32650));
    ADD_FAILURE() << "wrote into another GeoPackage";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(e.message().find("holds other layers (parcels"), std::string::npos) << e.message();
  }
  EXPECT_EQ(std::filesystem::file_size(other), size);
  DatasetPtr ds = open_vector(other);
  EXPECT_EQ(ds->GetLayerCount(), 1);
}

INSTANTIATE_TEST_SUITE_P(Stores, History, ::testing::Values("gpkg", "pg"),
                         [](const auto& p) { return p.param; });

// ---------------------------------------------------------------------------------------------
// The history through monitoring runs on a synthetic scene.

class HistoryRun
    : public test::WithStore<test::WithRunScene<::testing::TestWithParam<std::string>>> {
 protected:
  std::string pipeline(const std::string& out, const std::string& store,
                       const std::string& date) const {
    const std::string path = dir_ / ("p-" + out + "-" + date + ".yaml");
    std::ofstream(path) << scene_pipeline(out, date,
                                          "steps:\n  patches:\n    chips: false\nhistory:\n  "
                                          "store: \"" +
                                              store + "\"\n");
    return path;
  }
  static pipelines::RunReport run(const std::string& p, bool force = false) {
    pipelines::RunOptions ro;
    ro.force = force;
    return pipelines::run_pipeline(pipelines::load_pipeline(p), ro);
  }
};

TEST_P(HistoryRun, RunsRecordTheirCasesAndARerunIsReadBack) {
  const auto r1 = run(pipeline("out", where_, "2025-05-23"));
  const std::string o = dir_ / "out";
  const auto& h = r1.manifest["counts"]["history"];
  const int64_t n = h["new"].get<int64_t>();
  EXPECT_GT(n, 5);
  EXPECT_EQ(h["run_id"].get<int64_t>(), 1);
  // Every patch is a new case, in patches.geojson, history.csv and the GeoPackage.
  DatasetPtr ds = open_vector(o + "/patches.geojson");
  OGRLayer* l = ds->GetLayer(0);
  EXPECT_EQ(l->GetFeatureCount(), n);
  for (auto& f : *l) {
    EXPECT_STREQ(f->GetFieldAsString("status"), "new");
    // GDAL reads the dates back as Date fields ("2025/05/23").
    EXPECT_STREQ(f->GetFieldAsString("first_seen"), "2025/05/23");
    EXPECT_STREQ(f->GetFieldAsString("confidence"), "low");
    const std::string prio = f->GetFieldAsString("priority");
    const char* due = prio == "P1" ? "2025/05/30" : prio == "P2" ? "2025/06/22" : "2025/08/21";
    EXPECT_STREQ(f->GetFieldAsString("due_date"), due) << prio;
    EXPECT_EQ(std::string(f->GetFieldAsString("track_id")),
              "T20250523-" + std::string(f->GetFieldAsString("patch_id")));
  }
  const std::string csv = slurp(o + "/history.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), n + 1);
  EXPECT_NE(slurp(o + "/report.html").find("History (run 1, 2025-05-23)"), std::string::npos);
  DatasetPtr g = open_vector(o + "/farmwatch.gpkg");
  EXPECT_NE(g->GetLayerByName("patches")->GetLayerDefn()->GetFieldIndex("due_date"), -1);
  const std::string geojson1 = slurp(o + "/patches.geojson"), dump1 = test::dump_store(where_);

  // Forced again: the store already holds this run; its outcome is read back, not doubled.
  const auto r2 = run(pipeline("out", where_, "2025-05-23"), true);
  EXPECT_TRUE(r2.manifest["counts"]["history"]["replayed"].get<bool>());
  EXPECT_EQ(slurp(o + "/patches.geojson"), geojson1);
  EXPECT_EQ(test::dump_store(where_), dump1);

  // A month later, the same changes: every case persists, confirmed twice, P1s overdue.
  const auto r3 = run(pipeline("out", where_, "2025-06-23"));
  const auto& h3 = r3.manifest["counts"]["history"];
  EXPECT_EQ(h3["persisting"].get<int64_t>(), n);
  EXPECT_EQ(h3["new"].get<int64_t>(), 0);
  EXPECT_EQ(h3["open"].get<int64_t>(), n);
  ds = open_vector(o + "/patches.geojson");
  int64_t p1 = 0;
  for (auto& f : *ds->GetLayer(0)) {
    EXPECT_STREQ(f->GetFieldAsString("status"), "persisting");
    EXPECT_STREQ(f->GetFieldAsString("confidence"), "high");
    EXPECT_EQ(f->GetFieldAsInteger("days_open"), 31);
    const bool is_p1 = std::string(f->GetFieldAsString("priority")) == "P1";
    p1 += is_p1;
    // P1 due after 7 days, P2 after 30: both past; P3 (90 days) not.
    EXPECT_EQ(f->GetFieldAsInteger("overdue"),
              std::string(f->GetFieldAsString("priority")) == "P3" ? 0 : 1);
  }
  EXPECT_GT(p1, 0);
  // The report's urgent patches show their case, the overdue ones flagged.
  const std::string report = slurp(o + "/report.html");
  EXPECT_NE(report.find("<th class=l>due</th>"), std::string::npos);
  EXPECT_NE(report.find(" (overdue)"), std::string::npos);
  EXPECT_NE(report.find("Overdue cases"), std::string::npos);
}

// SIGKILL at several moments inside the store's transaction: the store stays as it was, and
// the next run records exactly what an uninterrupted run records.
TEST_P(HistoryRun, KilledDuringTheStoreUpdateTheStoreIsAsBefore) {
  const std::string ref =
      GetParam() == "gpkg" ? dir_ / "ref.gpkg" : test::store_location("pg", dir_);
  run(pipeline("ref", ref, "2025-05-23"));
  run(pipeline("ref", ref, "2025-06-23"));
  const std::string expected = test::dump_store(ref);
  test::drop_store(ref);

  run(pipeline("out", where_, "2025-05-23"));
  const std::string before = test::dump_store(where_);
  const std::string p2 = pipeline("out", where_, "2025-06-23");
  int kills = 0;
  for (int n : {1, 2, 10, 30, 60, 100}) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    env.push_back("FW_TEST_KILL_IN_HISTORY=" + std::to_string(n));
    std::vector<char*> envp, argv;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = {FW_BINARY, "--log-level", "off", "run", p2};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data()), 0);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
      ++kills;
      EXPECT_EQ(test::dump_store(where_), before) << "killed after " << n << " writes";
    } else {
      ADD_FAILURE() << "not killed after " << n << " writes (fewer writes in a run?)";
      break;
    }
  }
  EXPECT_EQ(kills, 6);
  run(pipeline("out", where_, "2025-06-23"));
  EXPECT_EQ(test::dump_store(where_), expected);
}

// Four monitoring runs of synthetic imagery against one baseline: the later images are the
// scene's second date with planted changes taken back (date-1 pixels over them) or hidden under
// new clouds. X appears half built, then whole (expanded); Y is clouded over in run 3
// (unobserved, its streak kept) and seen again; Z disappears in run 3 (resolved).
TEST_P(HistoryRun, FourSynthRunsFollowTheirCases) {
  const std::string s = scene();
  DatasetPtr d1 = open_raster(s + "/date1.tif");
  const Grid grid = Grid::of(*d1);
  // A probe run without history: which planted changes give exactly one patch.
  {
    const std::string probe = dir_ / "probe.yaml";
    std::string text = slurp(pipeline("probe", "", "2025-05-23"));
    text = text.substr(0, text.find("history:")) + "outputs:\n  dir: probe\n";
    std::ofstream(probe) << text;
    run(probe);
  }
  struct Change {
    std::string id, category;
    double area = 0;
    OGREnvelope env;
    GeometryPtr geom;
  };
  std::vector<Change> all, picked;
  {
    std::ifstream in(s + "/truth.json");
    const auto truth = nlohmann::json::parse(in);
    for (const auto& c : truth["changes"]) {
      Change ch;
      ch.id = c["id"];
      ch.category = c["category"];
      ch.area = c["area_m2"];
      OGRGeometry* g = nullptr;
      const std::string wkt = c["wkt"];
      OGRGeometryFactory::createFromWkt(wkt.c_str(), nullptr, &g);
      ch.geom.reset(g);
      g->getEnvelope(&ch.env);
      if (c["cloud_fraction"].get<double>() > 0) ch.area = -1;  // not a candidate
      all.push_back(std::move(ch));
    }
  }
  // The run's GeoPackage holds the patches in the scene's CRS.
  DatasetPtr probe = open_vector(dir_ / "probe/farmwatch.gpkg");
  auto patches_on = [&](OGRLayer* l, const Change& c) {
    std::vector<FeaturePtr> hits;
    l->ResetReading();
    for (auto& f : *l) {
      if (f->GetFieldAsString("category") == c.category &&
          f->GetGeometryRef()->Intersects(c.geom.get()))
        hits.push_back(std::move(f));
    }
    return hits;
  };
  const double margin = 3 * grid.dx();
  for (auto& c : all) {
    if (c.area < 1500 || picked.size() == 3) continue;
    bool alone = true;
    for (const auto& o : all) {
      if (&o == &c) continue;
      alone &= o.env.MaxX + margin < c.env.MinX || o.env.MinX - margin > c.env.MaxX ||
               o.env.MaxY + margin < c.env.MinY || o.env.MinY - margin > c.env.MaxY;
    }
    if (alone && patches_on(probe->GetLayerByName("patches"), c).size() == 1)
      picked.push_back(std::move(c));
  }
  ASSERT_EQ(picked.size(), 3u) << "the scene lacks three isolated, detected changes";
  // X: the largest; Y and Z the others.
  std::sort(picked.begin(), picked.end(), [](auto& a, auto& b) { return a.area > b.area; });
  const Change &X = picked[0], &Y = picked[1], &Z = picked[2];

  // The window of an envelope (plus a margin) on the scene's grid.
  auto window = [&](double x0, double y0, double x1, double y1, const Grid& g) {
    return g.window_of({x0 - margin, y0 - margin, x1 + margin, y1 + margin})
        .intersection(g.full_window());
  };
  auto make_after = [&](int k) {
    const std::string path = dir_ / ("after" + std::to_string(k) + ".tif");
    DatasetPtr src = open_raster(s + "/date2.tif");
    DatasetPtr out(
        driver("GTiff").CreateCopy(path.c_str(), src.get(), FALSE, nullptr, nullptr, nullptr));
    std::vector<Window> revert;
    const double xmid = (X.env.MinX + X.env.MaxX) / 2;
    if (k == 1) revert.push_back(window(xmid, X.env.MinY, X.env.MaxX, X.env.MaxY, grid));
    if (k >= 3) revert.push_back(window(Z.env.MinX, Z.env.MinY, Z.env.MaxX, Z.env.MaxY, grid));
    for (const Window& w : revert) {
      std::vector<uint16_t> buf(static_cast<std::size_t>(w.w * w.h));
      for (int b = 1; b <= d1->GetRasterCount(); ++b) {
        EXPECT_EQ(d1->GetRasterBand(b)->RasterIO(
                      GF_Read, static_cast<int>(w.x), static_cast<int>(w.y), static_cast<int>(w.w),
                      static_cast<int>(w.h), buf.data(), static_cast<int>(w.w),
                      static_cast<int>(w.h), GDT_UInt16, 0, 0),
                  CE_None);
        EXPECT_EQ(out->GetRasterBand(b)->RasterIO(
                      GF_Write, static_cast<int>(w.x), static_cast<int>(w.y), static_cast<int>(w.w),
                      static_cast<int>(w.h), buf.data(), static_cast<int>(w.w),
                      static_cast<int>(w.h), GDT_UInt16, 0, 0),
                  CE_None);
      }
    }
    const std::string scl = dir_ / ("scl" + std::to_string(k) + ".tif");
    DatasetPtr ssrc = open_raster(s + "/date2_scl.tif");
    DatasetPtr sout(
        driver("GTiff").CreateCopy(scl.c_str(), ssrc.get(), FALSE, nullptr, nullptr, nullptr));
    if (k == 3) {  // a cloud (SCL 9) over Y
      const Grid sg = Grid::of(*sout);
      const Window w = window(Y.env.MinX, Y.env.MinY, Y.env.MaxX, Y.env.MaxY, sg);
      std::vector<uint8_t> nine(static_cast<std::size_t>(w.w * w.h), 9);
      EXPECT_EQ(sout->GetRasterBand(1)->RasterIO(
                    GF_Write, static_cast<int>(w.x), static_cast<int>(w.y), static_cast<int>(w.w),
                    static_cast<int>(w.h), nine.data(), static_cast<int>(w.w),
                    static_cast<int>(w.h), GDT_Byte, 0, 0),
                CE_None);
    }
    return std::pair{path, scl};
  };
  const char* dates[] = {"", "2025-05-23", "2025-06-23", "2025-07-23", "2025-08-23"};
  std::map<std::string, std::map<std::string, std::string>> rows;  // track -> column -> value
  auto run_k = [&](int k) {
    const auto [after, scl] = make_after(k);
    std::string text = slurp(pipeline("out", where_, dates[k]));
    auto swap = [&](const std::string& from, const std::string& to) {
      text.replace(text.find(from), from.size(), to);
    };
    swap(s + "/date2.tif", after);
    swap(s + "/date2_scl.tif", scl);
    const std::string p = dir_ / ("seq" + std::to_string(k) + ".yaml");
    std::ofstream(p) << text;
    run(p);
    rows.clear();
    std::ifstream in(dir_ / "out/history.csv");
    std::string line, cell;
    std::getline(in, line);
    std::vector<std::string> head;
    for (std::stringstream ss(line); std::getline(ss, cell, ',');) head.push_back(cell);
    while (std::getline(in, line)) {
      std::map<std::string, std::string> r;
      std::stringstream ss(line);
      for (const auto& h : head) {
        std::getline(ss, cell, ',');
        r[h] = cell;
      }
      rows[r["track_id"]] = r;
    }
  };
  auto track_of = [&](const Change& c) {
    DatasetPtr ds = open_vector(dir_ / "out/farmwatch.gpkg");
    const auto hits = patches_on(ds->GetLayerByName("patches"), c);
    EXPECT_EQ(hits.size(), 1u) << c.id;
    return hits.empty() ? std::string() : std::string(hits[0]->GetFieldAsString("track_id"));
  };

  run_k(1);
  const std::string tx = track_of(X), ty = track_of(Y), tz = track_of(Z);
  EXPECT_EQ(rows[tx]["status"], "new");
  EXPECT_EQ(rows[ty]["status"], "new");
  EXPECT_EQ(rows[tz]["status"], "new");
  EXPECT_LT(std::stod(rows[tx]["area_m2"]), 0.7 * X.area);  // half of X is built
  const std::string px = rows[tx]["priority"];
  const int due_x = px == "P1" ? 7 : px == "P2" ? 30 : 90;
  EXPECT_EQ(rows[tx]["due_date"], h::format_date(h::parse_date(dates[1]) + due_x));

  run_k(2);
  EXPECT_EQ(track_of(X), tx);
  EXPECT_EQ(rows[tx]["status"], "expanded");
  EXPECT_EQ(rows[tx]["confidence"], "high");
  EXPECT_EQ(rows[tx]["days_open"], "31");
  EXPECT_EQ(rows[tx]["overdue"], due_x < 31 ? "1" : "0");
  EXPECT_EQ(rows[ty]["status"], "persisting");
  EXPECT_EQ(rows[tz]["status"], "persisting");

  run_k(3);
  EXPECT_EQ(rows[tx]["status"], "persisting");
  EXPECT_EQ(rows[tx]["confidence"], "highest");
  EXPECT_EQ(rows[ty]["status"], "unobserved");
  EXPECT_EQ(rows[ty]["confidence"], "high");
  EXPECT_LT(std::stod(rows[ty]["observed_fraction"]), 0.5);
  EXPECT_EQ(rows[tz]["status"], "resolved");
  EXPECT_GE(std::stod(rows[tz]["observed_fraction"]), 0.5);

  run_k(4);
  EXPECT_EQ(track_of(Y), ty);
  EXPECT_EQ(rows[ty]["status"], "persisting");
  EXPECT_EQ(rows[ty]["confidence"], "highest");  // run 1, 2 and 4: the clouds broke nothing
  EXPECT_EQ(rows[ty]["times_seen"], "3");
  EXPECT_EQ(rows.count(tz), 0u);  // closed: not followed any more
  EXPECT_EQ(rows[tx]["days_open"], "92");
}

INSTANTIATE_TEST_SUITE_P(Stores, HistoryRun, ::testing::Values("gpkg", "pg"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace fw
