#include "pipelines/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "pipelines/stages.hpp"

namespace fw::pipelines {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> d(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = d[0];
    d[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t t = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = t;
    }
  }
  return d[b.size()];
}

std::optional<bool> parse_bool(const std::string& s) {
  const std::string v = lower(s);
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  return std::nullopt;
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end && *end == '\0' && std::isfinite(out);
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "a single value";
  }
}

class Validator {
 public:
  Validator(std::string name, std::string base) : name_(std::move(name)), base_(std::move(base)) {
    for (const OptionSpec* o : all_options()) {
      specs_[o->key] = o;
      std::string p = o->key;
      for (auto dot = p.rfind('.'); dot != std::string::npos; dot = p.rfind('.')) {
        p = p.substr(0, dot);
        sections_.insert(p);
      }
    }
  }

  Origin at(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    return m.is_null() ? Origin{name_, 0, 0} : Origin{name_, m.line + 1, m.column + 1};
  }
  void problem(const Origin& o, const std::string& msg) { problems_.push_back({o, msg}); }

  // Children of section `path` (e.g. "steps.change"): option keys and subsections.
  std::vector<std::string> children(const std::string& path) const {
    std::set<std::string> out;
    const std::string pre = path.empty() ? "" : path + ".";
    auto add = [&](const std::string& k) {
      if (k.rfind(pre, 0) != 0) return;
      const std::string rest = k.substr(pre.size());
      out.insert(rest.substr(0, rest.find('.')));
    };
    for (const auto& [k, _] : specs_) add(k);
    return {out.begin(), out.end()};
  }

  void walk(const YAML::Node& node, const std::string& path) {
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const std::string full = path.empty() ? key : path + "." + key;
      const YAML::Node& v = kv.second;
      if (auto it = specs_.find(full); it != specs_.end()) {
        check(*it->second, v, at(kv.first));
      } else if (sections_.count(full)) {
        if (v.IsMap()) {
          walk(v, full);
        } else if (!v.IsNull()) {
          problem(at(v), "'" + full + "' is a section: expected a map of " + join(children(full)) +
                             ", got " + node_kind(v));
        }
      } else {
        const auto kids = children(path);
        std::string best;
        std::size_t bd = 3;
        for (const auto& k : kids) {
          const std::size_t d = edit_distance(lower(key), lower(k));
          if (d < bd) bd = d, best = k;
        }
        problem(at(kv.first), "unknown key '" + key + "'" +
                                  (path.empty() ? "" : " in '" + path + "'") +
                                  (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                                  "; expected one of: " + join(kids));
      }
    }
  }

  void check(const OptionSpec& spec, const YAML::Node& v, const Origin& key_origin) {
    seen_.insert(spec.key);
    Value val;
    val.given = true;
    val.origin = at(v);
    if (val.origin.line == 0) val.origin = key_origin;
    const bool list = spec.type == OptType::kList || spec.type == OptType::kFileList;
    std::vector<std::pair<std::string, Origin>> items;
    if (v.IsSequence()) {
      if (!list) {
        problem(val.origin,
                "'" + spec.key + "' expects " + opt_type_name(spec.type) + ", got a list");
        return;
      }
      for (const auto& e : v) {
        if (!e.IsScalar()) {
          problem(at(e), "'" + spec.key + "' expects a list of single values, got " + node_kind(e) +
                             " in it");
          return;
        }
        items.emplace_back(e.Scalar(), at(e));
      }
    } else if (v.IsScalar()) {
      items.emplace_back(v.Scalar(), val.origin);
    } else if (v.IsNull()) {
      if (!list) {
        problem(val.origin,
                "'" + spec.key + "' has no value; expected " + opt_type_name(spec.type));
        return;
      }
    } else {
      problem(val.origin,
              "'" + spec.key + "' expects " + opt_type_name(spec.type) + ", got " + node_kind(v));
      return;
    }
    bool ok = true;
    for (const auto& [text, where] : items) ok &= check_item(spec, text, where);
    if (!ok) return;
    for (const auto& it : items) val.items.push_back(it.first);
    values_[spec.key] = val;
  }

  bool check_item(const OptionSpec& spec, const std::string& text, const Origin& where) {
    auto fail = [&](const std::string& m) {
      problem(where, "'" + spec.key + "': " + m);
      return false;
    };
    double x = 0;
    switch (spec.type) {
      case OptType::kNumber:
      case OptType::kInt:
        if (!parse_number(text, x)) return fail("expected a number, got '" + text + "'");
        if (spec.type == OptType::kInt && x != std::floor(x))
          return fail("expected a whole number, got '" + text + "'");
        if (x < spec.min || x > spec.max) {
          std::ostringstream r;
          r << "expected a number from " << spec.min << " to " << spec.max << ", got " << text;
          return fail(r.str());
        }
        break;
      case OptType::kBool:
        if (!parse_bool(text)) return fail("expected true or false, got '" + text + "'");
        break;
      case OptType::kChoice:
        if (std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end())
          return fail("expected one of " + join(spec.choices) + ", got '" + text + "'");
        break;
      case OptType::kFile:
      case OptType::kFileList: {
        if (text.empty()) break;
        const fs::path p = fs::path(text).is_absolute() ? fs::path(text) : fs::path(base_) / text;
        std::error_code ec;
        if (!fs::exists(p, ec) && text.rfind("/vsi", 0) != 0)
          return fail("file not found: " + fs::absolute(p).lexically_normal().string());
        break;
      }
      default:
        break;
    }
    if (spec.check) {
      const std::string m = spec.check(text);
      if (!m.empty()) return fail(m);
    }
    return true;
  }

  std::string name_, base_;
  std::map<std::string, const OptionSpec*> specs_;
  std::set<std::string> sections_;
  std::map<std::string, Value> values_;
  std::set<std::string> seen_;  // keys given, valid or not
  std::vector<Problem> problems_;
};

// Sets `key.path` in `root` to `value`, creating sections as needed.
void set_path(YAML::Node root, const std::string& key, const YAML::Node& value) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  YAML::Node cur = root;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = cur[parts[i]];
    if (!next.IsMap()) next = YAML::Node(YAML::NodeType::Map);
    cur[parts[i]] = next;
    cur.reset(next);
  }
  cur[parts.back()] = value;
}

}  // namespace

const char* opt_type_name(OptType t) {
  switch (t) {
    case OptType::kString:
      return "a text value";
    case OptType::kChoice:
      return "one of a set of words";
    case OptType::kNumber:
      return "a number";
    case OptType::kInt:
      return "a whole number";
    case OptType::kBool:
      return "true or false";
    case OptType::kList:
      return "a list";
    case OptType::kFile:
      return "a file path";
    case OptType::kFileList:
      return "a list of file paths";
    case OptType::kPath:
      return "a folder or file path";
  }
  return "a value";
}

std::string Origin::describe() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

namespace {
std::string problems_text(const std::vector<Problem>& ps) {
  std::string s =
      std::to_string(ps.size()) + (ps.size() == 1 ? " problem" : " problems") + " in the pipeline:";
  for (const auto& p : ps) s += "\n  " + p.text();
  return s;
}
}  // namespace

PipelineError::PipelineError(std::vector<Problem> problems)
    : Error(ExitCode::kUsage, problems_text(problems),
            {.file = problems.empty() ? "" : problems[0].where.file,
             .line = problems.empty() ? 0 : problems[0].where.line,
             .column = problems.empty() ? 0 : problems[0].where.column}),
      problems_(std::move(problems)) {}

const Value& Config::at(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw_internal("pipeline option '" + key + "' is not registered");
  return it->second;
}
bool Config::given(const std::string& key) const {
  return at(key).given;
}
const std::string& Config::str(const std::string& key) const {
  static const std::string empty;
  const Value& v = at(key);
  return v.items.empty() ? empty : v.items[0];
}
double Config::num(const std::string& key) const {
  double x = 0;
  parse_number(str(key), x);
  return x;
}
int64_t Config::integer(const std::string& key) const {
  return static_cast<int64_t>(std::llround(num(key)));
}
bool Config::flag(const std::string& key) const {
  return parse_bool(str(key)).value_or(false);
}
std::vector<std::string> Config::list(const std::string& key) const {
  return at(key).items;
}
std::string Config::path(const std::string& key) const {
  const std::string& s = str(key);
  if (s.empty() || s.rfind("/vsi", 0) == 0 || s.rfind("PG:", 0) == 0 || fs::path(s).is_absolute())
    return s;
  return (fs::path(base_) / s).lexically_normal().string();
}
std::vector<std::string> Config::paths(const std::string& key) const {
  std::vector<std::string> out;
  for (const auto& s : at(key).items) {
    out.push_back(s.empty() || s.rfind("/vsi", 0) == 0 || fs::path(s).is_absolute()
                      ? s
                      : (fs::path(base_) / s).lexically_normal().string());
  }
  return out;
}
const Origin& Config::origin(const std::string& key) const {
  return at(key).origin;
}
void Config::set(const std::string& key, const std::vector<std::string>& items) {
  Value& v = values_.at(key);
  v.items = items;
  v.given = true;
  v.origin = {"--set", 0, 0};
}

std::string Config::effective_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const OptionSpec* o : all_options()) {
    const Value& v = at(o->key);
    nlohmann::json x;
    switch (o->type) {
      case OptType::kNumber:
      case OptType::kInt:
        x = v.items.empty() ? nlohmann::json() : nlohmann::json(num(o->key));
        break;
      case OptType::kBool:
        x = flag(o->key);
        break;
      case OptType::kList:
        x = v.items;
        break;
      case OptType::kFileList:
        x = paths(o->key);
        break;
      case OptType::kFile:
      case OptType::kPath:
        x = path(o->key);
        break;
      default:
        x = str(o->key);
    }
    j[o->key] = x;
  }
  return j.dump(2);
}

Config load_pipeline(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input("cannot read the pipeline file", {.file = path});
  std::stringstream ss;
  ss << in.rdbuf();
  return load_pipeline_text(ss.str(), path, overrides);
}

Config load_pipeline_text(const std::string& text, const std::string& name,
                          const std::vector<std::string>& overrides) {
  std::string base = fs::path(name).parent_path().string();
  if (base.empty()) base = ".";
  Validator val(name, base);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw PipelineError({{{name, e.mark.line + 1, e.mark.column + 1}, "not valid YAML: " + e.msg}});
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) {
    throw PipelineError({{val.at(root),
                          "expected a map with the sections inputs, grid, steps "
                          "and outputs, got " +
                              std::string(node_kind(root))}});
  }
  std::map<std::string, std::string> set_keys;  // key -> the --set text
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      val.problem({"--set " + o, 0, 0}, "expected key.path=value");
      continue;
    }
    const std::string key = o.substr(0, eq), value = o.substr(eq + 1);
    YAML::Node v;
    try {
      v = YAML::Load(value);
    } catch (const YAML::Exception&) {
      v = YAML::Node(value);
    }
    if (v.IsNull()) v = YAML::Node(value);
    set_path(root, key, v);
    set_keys[key] = o;
  }
  val.walk(root, "");
  // Values given with --set say so.
  for (auto& [key, v] : val.values_) {
    if (set_keys.count(key)) v.origin = {"--set " + set_keys[key], 0, 0};
  }
  for (auto& p : val.problems_) {
    for (const auto& [key, o] : set_keys) {
      if (p.message.find("'" + key + "'") != std::string::npos) p.where = {"--set " + o, 0, 0};
    }
  }
  Config cfg;
  cfg.file_ = name;
  cfg.base_ = base;
  for (const OptionSpec* o : all_options()) {
    auto it = val.values_.find(o->key);
    if (it != val.values_.end()) {
      cfg.values_[o->key] = it->second;
      continue;
    }
    if (o->required && !val.seen_.count(o->key)) {
      // Point at the key of the deepest section that is there.
      YAML::Node n = root;
      Origin where = val.at(root);
      std::stringstream ss(o->key);
      std::string part;
      while (std::getline(ss, part, '.')) {
        if (!n.IsMap()) break;
        bool found = false;
        for (auto kv = n.begin(); kv != n.end(); ++kv) {
          if (kv->first.IsScalar() && kv->first.Scalar() == part) {
            where = val.at(kv->first);
            n.reset(kv->second);
            found = true;
            break;
          }
        }
        if (!found) break;
      }
      val.problem(where, "missing required key '" + o->key + "' (" + o->doc + ")");
      continue;
    }
    if (o->required) continue;  // given, but wrong: already reported
    Value d;
    d.origin = {"default", 0, 0};
    d.items =
        (o->type == OptType::kList || o->type == OptType::kFileList)
            ? split_list(o->def)
            : (o->def.empty() ? std::vector<std::string>{} : std::vector<std::string>{o->def});
    cfg.values_[o->key] = d;
  }
  if (!val.problems_.empty()) throw PipelineError(val.problems_);
  return cfg;
}

}  // namespace fw::pipelines
