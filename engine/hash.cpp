#include "engine/hash.hpp"
