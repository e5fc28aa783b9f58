// Rules that are data: "<level>: <condition>, <condition>, ..." where every condition must hold.
// A condition compares a numeric variable ("area_mu >= 1"; >, <, >=, <=) or tests membership of
// the rule's text variable ("category in construction|bare_soil"). Patch priorities and
// ecological-zone alerts are both written this way.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace fw::vectors {

struct RuleCondition {
  std::string var;  // the text variable's name for membership
  char op = '>';    // '>', '<', 'G' (>=), 'L' (<=), '=' (member in)
  double value = 0;
  std::vector<std::string> members;
};

struct Rule {
  int level = 0;
  std::vector<RuleCondition> all;
  std::string text;
};

struct RuleSyntax {
  std::string what;                                 // "priority rule"
  std::string example;                              // shown when the text is malformed
  std::vector<std::pair<std::string, int>> levels;  // {"P1", 1}, ...
  std::string member_var;                           // "category"
  std::vector<std::string> vars;                    // the numeric variables
  // Further variables accepted besides `vars` (e.g. any "<category>_m2"); may be null.
  std::function<bool(const std::string&)> also;
};

// Throws fw::Error (usage) naming the rule and saying what was expected.
Rule parse_rule(const std::string& text, const RuleSyntax& syntax);

// Whether every condition holds; a NaN variable fails its condition.
bool rule_holds(const Rule& rule, const std::function<double(const std::string&)>& value,
                const std::string& member);

std::string trim(std::string s);

}  // namespace fw::vectors
