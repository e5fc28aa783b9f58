#include "engine/shard_session.hpp"

#include "engine/error.hpp"

namespace fw {

std::shared_ptr<ShardSession> ShardSession::shard(ShardSpec spec, int phase, std::string run_key,
                                                  Folder folder, std::string out_dir) {
  if (phase < 1) throw_usage("a shard's phase is 1 or more, not " + std::to_string(phase));
  std::shared_ptr<ShardSession> s(new ShardSession);
  s->role_ = Role::kShard;
  s->spec_ = spec;
  s->phase_ = phase;
  s->phases_ = phase;
  s->run_key_ = std::move(run_key);
  s->folder_ = std::move(folder);
  s->out_dir_ = std::move(out_dir);
  return s;
}

std::shared_ptr<ShardSession> ShardSession::merge(int count, int phases, std::string run_key,
                                                  Folder folder) {
  std::shared_ptr<ShardSession> s(new ShardSession);
  s->role_ = Role::kMerge;
  s->spec_ = ShardSpec{0, count};
  s->phases_ = phases;
  s->run_key_ = std::move(run_key);
  s->folder_ = std::move(folder);
  return s;
}

ShardSession::Pass ShardSession::begin_pass(const std::string& label, bool shippable) {
  Pass p;
  p.number = ++passes_;
  if (role_ == Role::kShard) {
    // Passes run in the same order everywhere, so a pass that cannot be shipped ends every
    // later phase too: those phases have nothing to compute.
    if (!shippable) throw ShardPhaseDone{false, label, {}, 0};
    p.action = p.number < phase_ ? Action::kReplay : Action::kCompute;
    return p;
  }
  if (!shippable || p.number > phases_) local_ = true;
  p.action = local_ ? Action::kLocal : Action::kReplay;
  return p;
}

std::vector<std::string> ShardSession::files(int number) const {
  std::vector<std::string> out;
  for (int i = 0; i < spec_.count; ++i) out.push_back(folder_(number, i) + "/" + kFile);
  return out;
}

std::string ShardSession::output_file() const {
  return out_dir_ + "/" + kFile;
}

PartialKey ShardSession::key(int number, const std::string& label, uint64_t windows,
                             uint64_t plan) const {
  return PartialKey{run_key_, std::to_string(number) + ":" + label, windows, plan};
}

void ShardSession::computed(const std::string& label, ShardRange windows, std::size_t of) const {
  throw ShardPhaseDone{true, label, windows, of};
}

}  // namespace fw
