#include "vectors/rules.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/error.hpp"

namespace fw::vectors {

std::string trim(std::string s) {
  const auto a = s.find_first_not_of(" \t");
  const auto b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

Rule parse_rule(const std::string& text, const RuleSyntax& syn) {
  Rule r;
  r.text = text;
  const auto colon = text.find(':');
  auto bad = [&](const std::string& why) {
    throw_usage(syn.what + " '" + text + "': " + why + " (expected '" + syn.example + "')");
  };
  std::string names;
  for (const auto& [n, l] : syn.levels) names += (names.empty() ? "" : ", ") + n;
  if (colon == std::string::npos) bad("no level (" + names + ") before the conditions");
  const std::string head = trim(text.substr(0, colon));
  bool found = false;
  for (const auto& [n, l] : syn.levels) {
    if (n == head) r.level = l, found = true;
  }
  if (!found) bad("the level must be one of " + names);
  std::stringstream ss(text.substr(colon + 1));
  std::string part;
  while (std::getline(ss, part, ',')) {
    part = trim(part);
    if (part.empty()) continue;
    RuleCondition c;
    const std::string& mv = syn.member_var;
    if (part.rfind(mv, 0) == 0 && (part.size() == mv.size() || part[mv.size()] == ' ')) {
      std::string rest = trim(part.substr(mv.size()));
      if (rest.rfind("in ", 0) != 0 && rest.rfind("= ", 0) != 0 && rest.rfind("==", 0) != 0)
        bad("'" + mv + "' takes 'in a|b'");
      rest = trim(rest.substr(rest[0] == 'i' ? 3 : 2));
      std::stringstream cs(rest);
      std::string m;
      while (std::getline(cs, m, '|')) {
        if (!trim(m).empty()) c.members.push_back(trim(m));
      }
      if (c.members.empty()) bad("nothing after 'in'");
      c.var = mv;
      c.op = '=';
      r.all.push_back(c);
      continue;
    }
    std::size_t pos = std::string::npos;
    std::string op;
    for (const char* o : {">=", "<=", ">", "<"}) {
      pos = part.find(o);
      if (pos != std::string::npos) {
        op = o;
        break;
      }
    }
    if (pos == std::string::npos) bad("condition '" + part + "' has no comparison");
    c.var = trim(part.substr(0, pos));
    if (std::find(syn.vars.begin(), syn.vars.end(), c.var) == syn.vars.end() &&
        !(syn.also && syn.also(c.var))) {
      std::string list;
      for (const auto& v : syn.vars) list += (list.empty() ? "" : ", ") + v;
      bad("unknown variable '" + c.var + "' (variables: " + mv + ", " + list + ")");
    }
    c.op = op == ">=" ? 'G' : op == "<=" ? 'L' : op[0];
    const std::string num = trim(part.substr(pos + op.size()));
    char* end = nullptr;
    c.value = std::strtod(num.c_str(), &end);
    if (num.empty() || *end) bad("'" + num + "' is not a number");
    r.all.push_back(c);
  }
  return r;
}

bool rule_holds(const Rule& r, const std::function<double(const std::string&)>& value,
                const std::string& member) {
  for (const auto& c : r.all) {
    if (c.op == '=') {
      if (std::find(c.members.begin(), c.members.end(), member) == c.members.end()) return false;
      continue;
    }
    const double x = value(c.var);
    if (std::isnan(x)) return false;
    const bool ok = c.op == '>'   ? x > c.value
                    : c.op == '<' ? x < c.value
                    : c.op == 'G' ? x >= c.value
                                  : x <= c.value;
    if (!ok) return false;
  }
  return true;
}

}  // namespace fw::vectors
