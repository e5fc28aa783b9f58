// Counter-based hashing and random numbers: deterministic, order-independent, thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace fw {

// SplitMix64 finaliser: a strong 64-bit mixer.
constexpr uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Hash of several integers (order matters).
inline uint64_t hash_of(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x243f6a8885a308d3ull;
  for (uint64_t p : parts) h = mix64(h ^ p);
  return h;
}

// Uniform in [0, 1) from a hash.
inline double unit(uint64_t h) {
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

// A small sequential generator (SplitMix64), seeded from a hash.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ull); }
  double uniform() { return unit(next()); }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int64_t below(int64_t n) { return static_cast<int64_t>(uniform() * static_cast<double>(n)); }
  double normal() {
    const double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace fw
