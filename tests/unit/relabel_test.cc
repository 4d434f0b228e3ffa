#include "agent/config/relabel_config.h"
#include "agent/label/relabel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace ember {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RelabelRule rule(RelabelAction action, std::vector<std::string> sources, std::string regex,
                 std::string target = "", std::string replacement = "$1") {
  RelabelRule r;
  r.action = action;
  r.source_labels = std::move(sources);
  r.regex_text = std::move(regex);
  r.target_label = std::move(target);
  r.replacement = std::move(replacement);
  Status st = compile_relabel_regex(r);
  EXPECT_TRUE(st.ok()) << st.error().message;
  return r;
}

RelabelRule replace(std::vector<std::string> sources, std::string regex, std::string target,
                    std::string replacement = "$1") {
  return rule(RelabelAction::kReplace, std::move(sources), std::move(regex), std::move(target),
              std::move(replacement));
}

// Applies one rule; returns the labels, or {"<dropped>": ""} if dropped.
Labels run_rule(const RelabelRule& r, Labels in) {
  if (!relabel({r}, in)) return {{"<dropped>", ""}};
  return in;
}

const Labels kDropped = {{"<dropped>", ""}};

std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  char buf[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    s += buf;
  }
  return s;
}

std::string md5_hex(const std::string& s) {
  uint8_t out[16];
  md5(s.data(), s.size(), out);
  return hex(out, 16);
}

Result<std::vector<RelabelRule>> parse(const std::string& yaml, const std::string& src = "ember.yaml") {
  YAML::Node root = YAML::Load(yaml);
  return parse_relabel_configs(root["relabel_configs"], src);
}

// ---------------------------------------------------------------------------
// MD5

TEST(Md5, Rfc1321Vectors) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5_hex("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Md5, PaddingBoundaries) {
  // 55 bytes fit the length in one block, 56 need a second one.
  EXPECT_EQ(md5_hex(std::string(55, 'x')), "04364420e25c512fd958a70738aa8f72");
  EXPECT_EQ(md5_hex(std::string(56, 'x')), "668a72d5ba17f08e62dabcafad6db14b");
  EXPECT_EQ(md5_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), "8215ef0796a20bcaaae116d3876c664a");
  EXPECT_EQ(md5_hex(std::string(63, 'x')), "7dc2ca208106a2f703567bdff99d8981");
  EXPECT_EQ(md5_hex(std::string(64, 'x')), "c1bb4f81d892b2d57947682aeb252456");
  EXPECT_EQ(md5_hex(std::string(1000000, 'a')), "7707d6ae4e027c70eea2a935c2296f21");
}

// ---------------------------------------------------------------------------
// replace

TEST(Replace, MatchSetsTargetFromGroups) {
  auto r = replace({"a"}, "f(.*)", "b", "x$1");
  EXPECT_EQ(run_rule(r, {{"a", "foo"}}), (Labels{{"a", "foo"}, {"b", "xoo"}}));
}

TEST(Replace, NoMatchChangesNothing) {
  auto r = replace({"a"}, "f", "b", "bar");
  EXPECT_EQ(run_rule(r, {{"a", "boo"}}), (Labels{{"a", "boo"}}));
}

TEST(Replace, RegexIsFullyAnchored) {
  auto r = replace({"a"}, "foo", "b", "matched");
  EXPECT_EQ(run_rule(r, {{"a", "foobar"}}), (Labels{{"a", "foobar"}}));
  EXPECT_EQ(run_rule(r, {{"a", "xfoo"}}), (Labels{{"a", "xfoo"}}));
  EXPECT_EQ(run_rule(r, {{"a", "foo"}}), (Labels{{"a", "foo"}, {"b", "matched"}}));
  // Alternation is anchored as a whole, not just its first branch.
  auto alt = replace({"a"}, "foo|bar", "b", "matched");
  EXPECT_EQ(run_rule(alt, {{"a", "barx"}}), (Labels{{"a", "barx"}}));
  EXPECT_EQ(run_rule(alt, {{"a", "xfoo"}}), (Labels{{"a", "xfoo"}}));
}

TEST(Replace, EmptyResultDeletesTarget) {
  // (z*) matches the empty string, so $1 expands to "".
  auto r = replace({"a"}, "(z*)foo", "b");
  EXPECT_EQ(run_rule(r, {{"a", "foo"}, {"b", "old"}}), (Labels{{"a", "foo"}}));
  // A group that did not participate is "" too.
  auto opt = replace({"a"}, "(x)?foo", "b");
  EXPECT_EQ(run_rule(opt, {{"a", "foo"}, {"b", "old"}}), (Labels{{"a", "foo"}}));
}

TEST(Replace, BracedReferenceFollowedByLetters) {
  // ${1}bar is group 1 then "bar"; $1bar is the (missing) group named "1bar".
  auto braced = replace({"a"}, "(f)(o+)", "b", "${1}bar${2}");
  EXPECT_EQ(run_rule(braced, {{"a", "foo"}}).at("b"), "fbaroo");
  auto bare = replace({"a"}, "(f)(o+)", "b", "$1bar-$2");
  EXPECT_EQ(run_rule(bare, {{"a", "foo"}}).at("b"), "-oo");
}

TEST(Replace, DollarDollarIsALiteralDollar) {
  auto r = replace({"a"}, "(f)oo", "b", "$$1-$1 costs $$5");
  EXPECT_EQ(run_rule(r, {{"a", "foo"}}).at("b"), "$1-f costs $5");
}

TEST(Replace, MalformedReferencesStayLiteral) {
  // '$' not followed by a name, and an unclosed brace, are copied as text.
  auto r = replace({"a"}, "(f)oo", "b", "$-${1 $ $}");
  EXPECT_EQ(run_rule(r, {{"a", "foo"}}).at("b"), "$-${1 $ $}");
  // Leading zeros are not group numbers; out-of-range groups are "".
  auto z = replace({"a"}, "(f)oo", "b", "[$01][$9][${1}]");
  EXPECT_EQ(run_rule(z, {{"a", "foo"}}).at("b"), "[][][f]");
}

TEST(Replace, MultipleSourcesWithCustomSeparator) {
  auto r = replace({"a", "b", "c"}, "(.*)/(.*)/(.*)", "d", "$3.$2.$1");
  r.separator = "/";
  EXPECT_EQ(run_rule(r, {{"a", "x"}, {"b", "y"}, {"c", "z"}}).at("d"), "z.y.x");
}

TEST(Replace, MissingSourceLabelsCountAsEmpty) {
  auto r = replace({"a", "missing", "b"}, "x;;y", "t", "matched");
  EXPECT_EQ(run_rule(r, {{"a", "x"}, {"b", "y"}}).at("t"), "matched");
  auto k = rule(RelabelAction::kKeep, {"a", "missing", "b"}, "(.*);(.*);(.*)");
  EXPECT_EQ(run_rule(k, {{"a", "x"}}), (Labels{{"a", "x"}}));  // "x;;" matches
}

TEST(Replace, DefaultsCopySourceToTarget) {
  RelabelRule r;  // replace, regex (.*), replacement $1
  r.source_labels = {"__meta_pod"};
  r.target_label = "pod";
  ASSERT_TRUE(compile_relabel_regex(r).ok());
  EXPECT_EQ(run_rule(r, {{"__meta_pod", "web-1"}}).at("pod"), "web-1");
  // Source missing: (.*) matches "", $1 is "", so the target is removed.
  EXPECT_EQ(run_rule(r, {{"pod", "stale"}}), Labels{});
}

TEST(Replace, StaticLabelWithoutSources) {
  auto r = replace({}, "(.*)", "env", "prod");
  EXPECT_EQ(run_rule(r, {{"a", "1"}}), (Labels{{"a", "1"}, {"env", "prod"}}));
}

TEST(Replace, TargetLabelWithReferences) {
  auto r = replace({"kv"}, "([a-z_]+)=(.+)", "$1", "$2");
  EXPECT_EQ(run_rule(r, {{"kv", "env=prod"}}), (Labels{{"env", "prod"}, {"kv", "env=prod"}}));
  auto pre = replace({"kv"}, "([a-z_]+)=(.+)", "tag_${1}_x", "$2");
  EXPECT_EQ(run_rule(pre, {{"kv", "env=prod"}}).at("tag_env_x"), "prod");
}

TEST(Replace, TargetThatExpandsToAnInvalidNameIsANoOp) {
  auto r = replace({"kv"}, "(.+)=(.+)", "$1", "$2");
  EXPECT_EQ(run_rule(r, {{"kv", "9lives=yes"}}), (Labels{{"kv", "9lives=yes"}}));
  EXPECT_EQ(run_rule(r, {{"kv", "a-b=yes"}}), (Labels{{"kv", "a-b=yes"}}));
  // Expands to "" (no group 3): also a no-op.
  auto empty = replace({"kv"}, "(.+)=(.+)", "$3", "x");
  EXPECT_EQ(run_rule(empty, {{"kv", "a=b"}}), (Labels{{"kv", "a=b"}}));
}

TEST(Replace, PrometheusTargetFromGroupAndEmptyReplacement) {
  // From Prometheus's own tests: target "$1" -> "f", replacement "$2" -> "",
  // so "f" is deleted (it did not exist): nothing changes.
  auto r = replace({"a"}, "(f).*", "$1", "$2");
  EXPECT_EQ(run_rule(r, {{"a", "foo"}}), (Labels{{"a", "foo"}}));
}

TEST(Replace, NamedGroups) {
  auto r = replace({"ns", "pod"}, "(?P<ns>[^;]+);(?P<pod>.+)", "instance", "${pod}.$ns");
  EXPECT_EQ(run_rule(r, {{"ns", "default"}, {"pod", "web-1"}}).at("instance"), "web-1.default");
  auto angle = replace({"a"}, "(?<first>.)(.)(?<third>.)", "b", "$third$2${first}");
  EXPECT_EQ(run_rule(angle, {{"a", "xyz"}}).at("b"), "zyx");
}

TEST(Replace, DotDoesNotMatchNewlineLikeGo) {
  RelabelRule r;
  r.source_labels = {"a"};
  r.target_label = "b";
  ASSERT_TRUE(compile_relabel_regex(r).ok());
  EXPECT_EQ(run_rule(r, {{"a", "foo\nbar"}}), (Labels{{"a", "foo\nbar"}}));  // default (.*)
  auto dot = replace({"a"}, "f(.*)", "b");
  EXPECT_EQ(run_rule(dot, {{"a", "foo\nbar"}}), (Labels{{"a", "foo\nbar"}}));
  EXPECT_EQ(run_rule(dot, {{"a", "f\rx"}}).at("b"), "\rx");  // unlike ECMAScript, '\r' matches
  auto s = replace({"a"}, "(?s)f(.*)", "b");
  EXPECT_EQ(run_rule(s, {{"a", "foo\nbar"}}).at("b"), "oo\nbar");
}

TEST(Replace, LeadingCaseInsensitiveFlag) {
  auto r = replace({"a"}, "(?i)FOO(.*)", "b");
  EXPECT_EQ(run_rule(r, {{"a", "fOobar"}}).at("b"), "bar");
}

TEST(Replace, LiteralBracketFirstInClassLikeRe2) {
  auto r = replace({"a"}, "[]x]+", "b", "yes");
  EXPECT_EQ(run_rule(r, {{"a", "]x]"}}).at("b"), "yes");
  auto p = replace({"a"}, "[[:digit:]]+", "b", "digits");
  EXPECT_EQ(run_rule(p, {{"a", "2024"}}).at("b"), "digits");
}

TEST(Replace, LongValuesDoNotOverflowTheStack) {
  // std::regex's recursive executor crashed near 50 KB of input; RE2 runs in
  // linear time without recursion.
  std::string big(300000, 'a');
  auto r = replace({"a"}, "(a+)b?(a*)", "len", "ok");
  EXPECT_EQ(run_rule(r, {{"a", big}}).at("len"), "ok");
  auto grp = replace({"a"}, "x(.*)", "b");
  EXPECT_EQ(run_rule(grp, {{"a", "x" + big}}).at("b"), big);
  auto k = rule(RelabelAction::kKeep, {"a"}, "a*b");
  EXPECT_EQ(run_rule(k, {{"a", big}}), kDropped);
  auto split = replace({"a"}, "([^;]+);(.*?)(z*)", "b", "$2|$3");
  for (size_t n : {250u, 255u, 256u, 257u, 300u, 5000u}) {
    std::string v = std::string(n - 5, 'x') + ";yzzz";
    EXPECT_EQ(run_rule(split, {{"a", v}}).at("b"), "y|zzz") << n;
  }
}

TEST(Replace, PatternsThatBacktrackForeverRunInLinearTime) {
  // (a+)+b on a run of a's is exponential for a backtracking engine
  // (ECMAScript's std::regex gave up with error_complexity); RE2 answers
  // at once.
  auto k = rule(RelabelAction::kKeep, {"a"}, "(a+)+b");
  EXPECT_EQ(run_rule(k, {{"a", std::string(5000, 'a')}}), kDropped);
}

// ---------------------------------------------------------------------------
// keep / drop / keepequal / dropequal

TEST(KeepDrop, Keep) {
  auto r = rule(RelabelAction::kKeep, {"ns"}, "prod|staging");
  EXPECT_EQ(run_rule(r, {{"ns", "prod"}}), (Labels{{"ns", "prod"}}));
  EXPECT_EQ(run_rule(r, {{"ns", "production"}}), kDropped);  // anchored
  EXPECT_EQ(run_rule(r, {{"x", "1"}}), kDropped);             // missing -> ""
}

TEST(KeepDrop, Drop) {
  auto r = rule(RelabelAction::kDrop, {"ns"}, "kube-.*");
  EXPECT_EQ(run_rule(r, {{"ns", "kube-system"}}), kDropped);
  EXPECT_EQ(run_rule(r, {{"ns", "default"}}), (Labels{{"ns", "default"}}));
  EXPECT_EQ(run_rule(r, {{"ns", "my-kube-system"}}), (Labels{{"ns", "my-kube-system"}}));
}

TEST(KeepDrop, KeepEmptyValueAgainstPlusAndStar) {
  EXPECT_EQ(run_rule(rule(RelabelAction::kKeep, {"a"}, ".+"), {}), kDropped);
  EXPECT_EQ(run_rule(rule(RelabelAction::kKeep, {"a"}, ".*"), {}), Labels{});
}

TEST(KeepDrop, KeepEqual) {
  auto r = rule(RelabelAction::kKeepEqual, {"__tmp_port"}, "(.*)", "port");
  EXPECT_EQ(run_rule(r, {{"__tmp_port", "1234"}, {"port", "1234"}}), (Labels{{"__tmp_port", "1234"}, {"port", "1234"}}));
  EXPECT_EQ(run_rule(r, {{"__tmp_port", "1234"}, {"port", "5678"}}), kDropped);
  EXPECT_EQ(run_rule(r, {{"__tmp_port", "1234"}}), kDropped);
  EXPECT_EQ(run_rule(r, {}), Labels{});  // "" == ""
}

TEST(KeepDrop, DropEqual) {
  auto r = rule(RelabelAction::kDropEqual, {"__tmp_port"}, "(.*)", "port");
  EXPECT_EQ(run_rule(r, {{"__tmp_port", "1234"}, {"port", "1234"}}), kDropped);
  EXPECT_EQ(run_rule(r, {{"__tmp_port", "1234"}, {"port", "5678"}}),
            (Labels{{"__tmp_port", "1234"}, {"port", "5678"}}));
}

TEST(KeepDrop, StopsAtTheFirstDrop) {
  std::vector<RelabelRule> rules = {
      replace({}, "(.*)", "seen", "1"),
      rule(RelabelAction::kDrop, {"ns"}, "kube-system"),
      replace({}, "(.*)", "after", "1"),
  };
  Labels l = {{"ns", "kube-system"}};
  EXPECT_FALSE(relabel(rules, l));
  EXPECT_EQ(l.count("after"), 0u);
  Labels k = {{"ns", "default"}};
  EXPECT_TRUE(relabel(rules, k));
  EXPECT_EQ(k, (Labels{{"after", "1"}, {"ns", "default"}, {"seen", "1"}}));
}

// ---------------------------------------------------------------------------
// hashmod

TEST(HashMod, MatchesPrometheus) {
  // md5("baz") = 73feffa4b7f6bb68 e44cf984c85f6e88; the last 8 bytes read
  // big-endian are 16450797887570275976, and that % 1000 = 976 (the value in
  // Prometheus's own relabel tests).
  auto r = rule(RelabelAction::kHashMod, {"c"}, "(.*)", "d");
  r.modulus = 1000;
  EXPECT_EQ(run_rule(r, {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}}).at("d"), "976");
  // md5("foo\nbar") ends 3ec798554f1fe7e6 = 4523751842884085734 -> 734.
  EXPECT_EQ(run_rule(r, {{"c", "foo\nbar"}}).at("d"), "734");
  // md5("abc") ends d6963f7d28e17f72 = 15462616177412505458 -> 8 (mod 10).
  r.modulus = 10;
  EXPECT_EQ(run_rule(r, {{"c", "abc"}}).at("d"), "8");
}

TEST(HashMod, HashesTheJoinedValue) {
  // md5("default;web-1") ends 4740643e6aa16df8 = 5134213794442079736 -> 0 (mod 3).
  auto r = rule(RelabelAction::kHashMod, {"ns", "pod"}, "(.*)", "__tmp_shard");
  r.modulus = 3;
  EXPECT_EQ(run_rule(r, {{"ns", "default"}, {"pod", "web-1"}}).at("__tmp_shard"), "0");
  r.modulus = 1;
  EXPECT_EQ(run_rule(r, {{"ns", "default"}}).at("__tmp_shard"), "0");
}

TEST(HashMod, ShardingWithKeep) {
  // The classic pattern: hash into 1000 shards and keep shard 976.
  std::vector<RelabelRule> rules = {rule(RelabelAction::kHashMod, {"c"}, "(.*)", "__tmp_hash"),
                                    rule(RelabelAction::kKeep, {"__tmp_hash"}, "976")};
  rules[0].modulus = 1000;
  Labels yes = {{"c", "baz"}}, no = {{"c", "abc"}};
  EXPECT_TRUE(relabel(rules, yes));
  EXPECT_FALSE(relabel(rules, no));
}

// ---------------------------------------------------------------------------
// labelmap / labeldrop / labelkeep

TEST(LabelMap, KubernetesPodLabels) {
  auto r = rule(RelabelAction::kLabelMap, {}, "__meta_kubernetes_pod_label_(.+)", "", "$1");
  Labels in = {{"__meta_kubernetes_pod_label_app", "web"},
               {"__meta_kubernetes_pod_label_tier", "front"},
               {"__meta_kubernetes_namespace", "prod"}};
  Labels want = in;
  want["app"] = "web";
  want["tier"] = "front";
  EXPECT_EQ(run_rule(r, in), want);
}

TEST(LabelMap, PrometheusExampleWithBracedReference) {
  auto r = rule(RelabelAction::kLabelMap, {}, "(b.*)", "", "bar_${1}");
  EXPECT_EQ(run_rule(r, {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}}),
            (Labels{{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}, {"bar_b1", "bar"}, {"bar_b2", "baz"}}));
}

TEST(LabelMap, AnchoredAndSeesOnlyLabelsFromBeforeTheRule) {
  auto r = rule(RelabelAction::kLabelMap, {}, "(.*)_x", "", "${1}_x_x");
  // a_x -> a_x_x; the new a_x_x (which also matches) is not mapped again.
  EXPECT_EQ(run_rule(r, {{"a_x", "1"}, {"b_xy", "2"}}), (Labels{{"a_x", "1"}, {"a_x_x", "1"}, {"b_xy", "2"}}));
}

TEST(LabelMap, InvalidResultingNameIsSkipped) {
  auto r = rule(RelabelAction::kLabelMap, {}, "l_(.*)", "", "$1");
  EXPECT_EQ(run_rule(r, {{"l_9x", "v"}, {"l_ok", "w"}}), (Labels{{"l_9x", "v"}, {"l_ok", "w"}, {"ok", "w"}}));
}

TEST(LabelDrop, DropsMatchingNames) {
  auto r = rule(RelabelAction::kLabelDrop, {}, "__meta_.*|pod_template_hash");
  EXPECT_EQ(run_rule(r, {{"__meta_a", "1"}, {"pod_template_hash", "x"}, {"app", "web"}, {"pod_template_hash2", "y"}}),
            (Labels{{"app", "web"}, {"pod_template_hash2", "y"}}));
}

TEST(LabelKeep, KeepsOnlyMatchingNames) {
  auto r = rule(RelabelAction::kLabelKeep, {}, "app|env");
  EXPECT_EQ(run_rule(r, {{"app", "web"}, {"app_version", "2"}, {"env", "prod"}, {"x", "y"}}),
            (Labels{{"app", "web"}, {"env", "prod"}}));
}

// ---------------------------------------------------------------------------
// lowercase / uppercase

TEST(Case, LowerAndUpper) {
  auto lo = rule(RelabelAction::kLowercase, {"a", "b"}, "(.*)", "l");
  EXPECT_EQ(run_rule(lo, {{"a", "FooBAR"}, {"b", "X_1"}}).at("l"), "foobar;x_1");
  auto up = rule(RelabelAction::kUppercase, {"a"}, "(.*)", "u");
  EXPECT_EQ(run_rule(up, {{"a", "web-1.default"}}).at("u"), "WEB-1.DEFAULT");
}

TEST(Case, UnicodeLetters) {
  auto up = rule(RelabelAction::kUppercase, {"a"}, "(.*)", "u");
  EXPECT_EQ(run_rule(up, {{"a", "äöü école привет"}}).at("u"), "ÄÖÜ ÉCOLE ПРИВЕТ");
  auto lo = rule(RelabelAction::kLowercase, {"a"}, "(.*)", "l");
  EXPECT_EQ(run_rule(lo, {{"a", "ÜNÏCÖDÉ ΣΑΣ"}}).at("l"), "ünïcödé σασ");
  // Invalid UTF-8 passes through; ASCII around it still maps.
  EXPECT_EQ(run_rule(lo, {{"a", "A\xff" "B"}}).at("l"), "a\xff" "b");
}

TEST(Case, EmptyValueDeletesTarget) {
  auto lo = rule(RelabelAction::kLowercase, {"missing"}, "(.*)", "l");
  EXPECT_EQ(run_rule(lo, {{"l", "old"}}), Labels{});
}

// ---------------------------------------------------------------------------
// Regex compilation

// Where ECMAScript (std::regex, which Ember used before RE2) and Go's syntax
// part: each now behaves as in Prometheus.
TEST(Regex, ErrorsAsInGo) {
  RelabelRule r;
  for (const char* re : {"(a)\\1",      // backreferences: none in Go
                         "(?=a)a",       // lookahead: none in Go (ECMAScript had it)
                         "a(?<=b)",      // lookbehind
                         "(?P<>a)",      // an empty group name
                         "(unclosed", "trailing\\", "a**",
                         "\\C"}) {        // any byte: RE2 has it, Go does not
    r.regex_text = re;
    auto st = compile_relabel_regex(r);
    ASSERT_FALSE(st.ok()) << re;
    EXPECT_THAT(st.error().message, HasSubstr(std::string("invalid regex '") + re + "'")) << re;
  }
}

TEST(Regex, GoSyntaxThatECMAScriptLacks) {
  // Unicode classes, quoting, \z, \x{..}, mid-pattern and multi-line flags:
  // config errors under std::regex, matches now.
  struct Case {
    const char* re;
    const char* value;
    bool matches;
  } cases[] = {
      {"a\\pLb", "aéb", true},     {"a\\pLb", "a1b", false},  {"[\\pL]+", "naïve", true},
      {"\\Qa.b\\E", "a.b", true}, {"\\Qa.b\\E", "axb", false}, {"ab\\z", "ab", true},
      {"\\x{41}", "A", true},       {"a(?i)b", "aB", true},        {"a(?i)b", "AB", false},
      {"(?m)^a$\\n^b", "a\nb", true}, {"(?U)(a+)", "aaa", true},  {"[[:^digit:]]+", "ab", true},
  };
  for (const auto& c : cases) {
    auto k = rule(RelabelAction::kKeep, {"a"}, c.re);
    EXPECT_EQ(run_rule(k, {{"a", c.value}}) != kDropped, c.matches) << c.re << " on " << c.value;
  }
  // (?<name>...), Go 1.22's spelling of a named group, in a pattern and
  // not inside a class or after a backslash.
  auto angle = replace({"a"}, "(?<first>.)(.)(?<third>.)[(?<]\\(", "b", "$third$2${first}");
  EXPECT_EQ(run_rule(angle, {{"a", "xyz<("}}).at("b"), "zyx");
}

TEST(Regex, EscapesSharedByBothDialects) {
  auto r = replace({"a"}, "\\d+\\.\\s\\w[\\-\\]]\\x41\\t\\bz", "b", "ok");
  EXPECT_EQ(run_rule(r, {{"a", "12. x-A\tz"}}).at("b"), "ok");
  EXPECT_EQ(run_rule(r, {{"a", "12. x]A\tz"}}).at("b"), "ok");
}

TEST(Regex, GroupNamesAlignWithNumbers) {
  RelabelRule r;
  r.regex_text = "(?:x)(a)(?P<n>b)[(](c)";
  ASSERT_TRUE(compile_relabel_regex(r).ok());
  EXPECT_EQ(r.group_names, (std::vector<std::string>{"", "", "n", ""}));
}

TEST(Regex, UncompiledRuleDoesNotCrash) {
  RelabelRule r;
  r.regex_text = "a.*";  // never compiled: matches nothing
  r.target_label = "b";
  r.source_labels = {"a"};
  EXPECT_EQ(run_rule(r, {{"a", "abc"}}), (Labels{{"a", "abc"}}));
}

// ---------------------------------------------------------------------------
// YAML

TEST(Parse, EveryActionAndDefaults) {
  const char* yaml = R"(relabel_configs:
  - source_labels: [__meta_kubernetes_namespace]
    regex: kube-system
    action: drop
  - source_labels: [__meta_kubernetes_namespace, __meta_kubernetes_pod_name]
    separator: /
    target_label: instance
  - action: labelmap
    regex: __meta_kubernetes_pod_label_(.+)
  - action: hashmod
    source_labels: [instance]
    target_label: __tmp_shard
    modulus: 4
  - action: keep
    source_labels: [__tmp_shard]
    regex: "0"
  - action: labeldrop
    regex: __tmp_.*
  - action: labelkeep
    regex: .+
  - action: LowerCase
    source_labels: [app]
    target_label: app
  - action: uppercase
    source_labels: [env]
    target_label: env_upper
  - action: keepequal
    source_labels: [a]
    target_label: b
  - action: dropequal
    source_labels: [a]
    target_label: c
  - target_label: static
    replacement: "yes"
)";
  auto rules = parse(yaml);
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  ASSERT_EQ(rules->size(), 12u);
  const auto& r = *rules;
  EXPECT_EQ(r[0].action, RelabelAction::kDrop);
  EXPECT_EQ(r[0].regex_text, "kube-system");
  EXPECT_EQ(r[1].action, RelabelAction::kReplace);
  EXPECT_EQ(r[1].separator, "/");
  EXPECT_EQ(r[1].regex_text, "(.*)");
  EXPECT_EQ(r[1].replacement, "$1");
  EXPECT_EQ(r[1].source_labels, (std::vector<std::string>{"__meta_kubernetes_namespace", "__meta_kubernetes_pod_name"}));
  EXPECT_EQ(r[2].action, RelabelAction::kLabelMap);
  EXPECT_EQ(r[3].action, RelabelAction::kHashMod);
  EXPECT_EQ(r[3].modulus, 4u);
  EXPECT_EQ(r[4].action, RelabelAction::kKeep);
  EXPECT_EQ(r[5].action, RelabelAction::kLabelDrop);
  EXPECT_EQ(r[6].action, RelabelAction::kLabelKeep);
  EXPECT_EQ(r[7].action, RelabelAction::kLowercase);
  EXPECT_EQ(r[8].action, RelabelAction::kUppercase);
  EXPECT_EQ(r[9].action, RelabelAction::kKeepEqual);
  EXPECT_EQ(r[10].action, RelabelAction::kDropEqual);
  EXPECT_EQ(r[11].replacement, "yes");
  EXPECT_EQ(r[11].separator, ";");
}

TEST(Parse, KubernetesPipelineEndToEnd) {
  const char* yaml = R"(relabel_configs:
  - source_labels: [__meta_kubernetes_namespace]
    regex: kube-.*
    action: drop
  - action: labelmap
    regex: __meta_kubernetes_pod_label_(.+)
  - source_labels: [__meta_kubernetes_namespace, __meta_kubernetes_pod_name]
    separator: /
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_container_name]
    target_label: container
  - action: labeldrop
    regex: __meta_.*
)";
  auto rules = parse(yaml);
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  Labels l = {{"__meta_kubernetes_namespace", "shop"},
              {"__meta_kubernetes_pod_name", "cart-7d9f"},
              {"__meta_kubernetes_pod_container_name", "app"},
              {"__meta_kubernetes_pod_label_app", "cart"},
              {"service_name", "cart"}};
  ASSERT_TRUE(relabel(*rules, l));
  EXPECT_EQ(l, (Labels{{"app", "cart"}, {"container", "app"}, {"pod", "shop/cart-7d9f"}, {"service_name", "cart"}}));
  Labels sys = {{"__meta_kubernetes_namespace", "kube-system"}};
  EXPECT_FALSE(relabel(*rules, sys));
}

TEST(Parse, MissingOrNullIsEmpty) {
  auto a = parse("other: 1\n");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->empty());
  auto b = parse("relabel_configs:\n");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(b->empty());
  auto c = parse("relabel_configs: []\n");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->empty());
}

TEST(Parse, UnknownActionNamesLineAndIndex) {
  const char* yaml = "relabel_configs:\n"                // 1
                     "  - source_labels: [a]\n"          // 2
                     "    target_label: b\n"             // 3
                     "  - action: drop\n"                // 4
                     "    source_labels: [a]\n"          // 5
                     "  - source_labels: [a]\n"          // 6
                     "    target_label: c\n"             // 7
                     "    action: repalce\n";            // 8
  auto r = parse(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "ember.yaml:8: relabel_configs[2].action: unknown action 'repalce' (expected one of replace, keep, "
            "drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase)");
}

TEST(Parse, UnknownKeySuggestsTheClosest) {
  auto r = parse("relabel_configs:\n  - source_labels: [a]\n    target_lable: b\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("ember.yaml:3: relabel_configs[0].target_lable: unknown key (did you mean "
                        "'relabel_configs[0].target_label'?)"));
  auto far = parse("relabel_configs:\n  - bogus: 1\n");
  EXPECT_THAT(far.error().message, HasSubstr("ember.yaml:2: relabel_configs[0].bogus: unknown key"));
  EXPECT_THAT(far.error().message, Not(HasSubstr("did you mean")));
}

TEST(Parse, RegexErrorNamesRuleAndLine) {
  const char* yaml = "relabel_configs:\n"                 // 1
                     "  - action: keep\n"                 // 2
                     "    source_labels: [a]\n"           // 3
                     "    regex: ok.*\n"                  // 4
                     "  - action: drop\n"                 // 5
                     "    source_labels: [a]\n"           // 6
                     "    regex: \"(unclosed\"\n";        // 7
  auto r = parse(yaml, "f.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("f.yaml:7: relabel_configs[1].regex: invalid regex '(unclosed'"));
  auto look = parse("relabel_configs:\n  - action: keep\n    regex: (?=a)b\n");
  EXPECT_THAT(look.error().message, HasSubstr("ember.yaml:3: relabel_configs[0].regex: invalid regex '(?=a)b'"));
}

TEST(Parse, RequiredAndForbiddenFields) {
  const char* yaml = "relabel_configs:\n"                          // 1
                     "  - source_labels: [a]\n"                    // 2  replace, no target
                     "  - action: hashmod\n"                       // 3  no modulus
                     "    source_labels: [a]\n"                    // 4
                     "    target_label: h\n"                       // 5
                     "  - action: labeldrop\n"                     // 6
                     "    source_labels: [a]\n"                    // 7  forbidden
                     "    regex: x\n"                              // 8
                     "  - action: keepequal\n"                     // 9
                     "    source_labels: [a]\n"                    // 10
                     "    target_label: b\n"                       // 11
                     "    regex: (.*)\n"                           // 12 forbidden
                     "  - action: lowercase\n"                     // 13
                     "    source_labels: [a]\n"                    // 14
                     "    target_label: b\n"                       // 15
                     "    replacement: x\n"                        // 16 forbidden
                     "  - action: labelkeep\n"                     // 17
                     "    regex: x\n"                              // 18
                     "    separator: ','\n"                        // 19 forbidden
                     "  - action: hashmod\n"                       // 20
                     "    target_label: 1bad\n"                    // 21 invalid name
                     "    modulus: 2\n";                           // 22
  auto r = parse(yaml);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_THAT(m, HasSubstr("ember.yaml:2: relabel_configs[0].target_label: required for action replace"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:3: relabel_configs[1].modulus: action hashmod requires a modulus greater than 0"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:7: relabel_configs[2].source_labels: not allowed with action labeldrop"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:12: relabel_configs[3].regex: not allowed with action keepequal"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:16: relabel_configs[4].replacement: not allowed with action lowercase"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:19: relabel_configs[5].separator: not allowed with action labelkeep"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:21: relabel_configs[6].target_label: '1bad' is not a valid label name"));
  // One line per error, all reported.
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 6);
}

TEST(Parse, TargetLabelTemplates) {
  auto ok = parse("relabel_configs:\n  - source_labels: [a]\n    regex: (.+)=(.+)\n    target_label: ${1}_x\n"
                  "    replacement: $2\n");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  auto bad = parse("relabel_configs:\n  - source_labels: [a]\n    target_label: ${1\n");
  EXPECT_THAT(bad.error().message, HasSubstr("ember.yaml:3: relabel_configs[0].target_label: '${1' is not a valid "
                                             "label name template"));
  auto dash = parse("relabel_configs:\n  - source_labels: [a]\n    target_label: foo-bar\n");
  EXPECT_THAT(dash.error().message,
              HasSubstr("ember.yaml:3: relabel_configs[0].target_label: 'foo-bar' is not a valid label name"));
  auto lm = parse("relabel_configs:\n  - action: labelmap\n    regex: (.*)\n    replacement: -$1\n");
  EXPECT_THAT(lm.error().message,
              HasSubstr("ember.yaml:4: relabel_configs[0].replacement: '-$1' is not a valid label name template"));
}

TEST(Parse, TypeErrors) {
  const char* yaml = "relabel_configs:\n"               // 1
                     "  - source_labels: a\n"           // 2
                     "    target_label: b\n"            // 3
                     "  - source_labels: [ok, bad-name, [x]]\n"  // 4
                     "    target_label: b\n"            // 5
                     "  - action: hashmod\n"            // 6
                     "    source_labels: [a]\n"         // 7
                     "    target_label: h\n"            // 8
                     "    modulus: -3\n"                // 9
                     "  - just a string\n"              // 10
                     "  - target_label: {x: 1}\n"       // 11
                     "  - target_label: a\n"            // 12
                     "    target_label: b\n";           // 13
  auto r = parse(yaml);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_THAT(m, HasSubstr("ember.yaml:2: relabel_configs[0].source_labels: expected a list of label names, got a string"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:4: relabel_configs[1].source_labels[1]: 'bad-name' is not a valid label name"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:4: relabel_configs[1].source_labels[2]: expected a label name, got a list"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:9: relabel_configs[2].modulus: expected a non-negative integer, got '-3'"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:10: relabel_configs[3]: expected a mapping of rule keys, got a string"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:11: relabel_configs[4].target_label: expected a string, got a mapping"));
  EXPECT_THAT(m, HasSubstr("ember.yaml:13: relabel_configs[5].target_label: duplicate key"));
}

TEST(Parse, NotAList) {
  auto r = parse("relabel_configs:\n  action: keep\n", "x.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("x.yaml:2: relabel_configs: expected a list of rules, got a mapping"));
}

TEST(Parse, ModulusOverflow) {
  auto r = parse("relabel_configs:\n  - action: hashmod\n    target_label: h\n    modulus: 18446744073709551616\n");
  EXPECT_THAT(r.error().message, HasSubstr("ember.yaml:4: relabel_configs[0].modulus: expected a non-negative integer"));
  auto max = parse("relabel_configs:\n  - action: hashmod\n    target_label: h\n    modulus: 18446744073709551615\n");
  ASSERT_TRUE(max.ok()) << max.error().message;
  EXPECT_EQ((*max)[0].modulus, 18446744073709551615ull);
}

TEST(Parse, EmptyActionIsAnError) {
  auto r = parse("relabel_configs:\n  - action: ''\n    target_label: x\n");
  EXPECT_THAT(r.error().message, HasSubstr("ember.yaml:2: relabel_configs[0].action: must not be empty"));
}

TEST(Parse, NullRegexIsTheEmptyRegex) {
  // As in Prometheus: `regex:` with no value matches only the empty string.
  auto r = parse("relabel_configs:\n  - action: keep\n    source_labels: [a]\n    regex:\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  Labels empty, set = {{"a", "x"}};
  EXPECT_TRUE(relabel(*r, empty));
  EXPECT_FALSE(relabel(*r, set));
}

}  // namespace
}  // namespace ember
