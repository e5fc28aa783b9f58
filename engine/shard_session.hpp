// A run split across shards, pass by pass (docs/scale-out.md). When SchedulerOptions::shard is
// set, every BlockScheduler::run of the run asks the session what to do with its pass:
//
// - a shard running phase k (`--shard i/N --phase k`) replays passes 1..k-1 from every shard's
//   stored results (consume in window order, exactly as one machine would), computes its own
//   windows of pass k, stores their results, and ends its run (ShardPhaseDone);
// - the merge replays every pass whose results the shards stored, and computes the rest itself.
//
// A pass can be shipped when its per-window result type R has `void write(ByteWriter&) const`
// and `static R read(ByteReader&)` (Shippable<R>). A shard that reaches a pass that cannot be
// shipped ends there: that pass and everything after it are the merge's. Outputs therefore
// equal a one-machine run's whatever the number of phases the shards ran.
#pragma once

#include <atomic>
#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/partials.hpp"
#include "engine/shard.hpp"

namespace fw {

template <class R>
concept Shippable = requires(const R& r, ByteWriter& w, ByteReader& in) {
  r.write(w);
  { R::read(in) } -> std::same_as<R>;
};

// Thrown to end a shard's run once its phase is done (not an fw::Error, nor a std::exception:
// nothing on the way catches it as a failure).
struct ShardPhaseDone {
  bool computed = false;  // false: the phase had nothing to compute (the merge's work)
  std::string pass;       // the pass computed, or the one the shard stopped at
  ShardRange windows;     // computed: the windows of the pass's plan this shard did
  std::size_t of = 0;     // the plan's windows
};

class ShardSession {
 public:
  enum class Role { kShard, kMerge };
  enum class Action { kLocal, kReplay, kCompute };
  // Where shard `shard`'s results of phase `phase` are kept (a folder).
  using Folder = std::function<std::string(int phase, int shard)>;

  // Shard `spec` computing phase `phase` (1-based); its results go into `out_dir`.
  static std::shared_ptr<ShardSession> shard(ShardSpec spec, int phase, std::string run_key,
                                             Folder folder, std::string out_dir);
  // The merge of `count` shards that ran phases 1..phases.
  static std::shared_ptr<ShardSession> merge(int count, int phases, std::string run_key,
                                             Folder folder);

  Role role() const { return role_; }
  const ShardSpec& spec() const { return spec_; }
  int phase() const { return phase_; }
  int phases() const { return phases_; }

  struct Pass {
    int number = 0;  // 1-based
    Action action = Action::kLocal;
  };
  // The next pass of the run. A shard past its phase, or at a pass that cannot be shipped,
  // throws ShardPhaseDone.
  Pass begin_pass(const std::string& label, bool shippable);
  // Every shard's file of pass `number`, and this shard's file.
  std::vector<std::string> files(int number) const;
  std::string output_file() const;
  PartialKey key(int number, const std::string& label, uint64_t windows, uint64_t plan) const;
  // A shard computed its phase's pass: ends the run.
  [[noreturn]] void computed(const std::string& label, ShardRange windows, std::size_t of) const;
  static constexpr const char* kFile = "pass.part";

 private:
  ShardSession() = default;
  Role role_ = Role::kMerge;
  ShardSpec spec_;
  int phase_ = 0, phases_ = 0;
  std::string run_key_;
  Folder folder_;
  std::string out_dir_;
  int passes_ = 0;
  bool local_ = false;  // merge: a pass was computed here, so every later one is too
};

}  // namespace fw
