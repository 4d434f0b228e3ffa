#include "agent/export/flamegraph.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ember {
namespace {

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// A deliberately small XML well-formedness checker, so the tests do not
// depend on xmllint being installed: tags balance, one root, attributes are
// quoted and unique, every '&' starts a valid reference, no raw '<' in text
// or attribute values.
std::string xml_error(const std::string& s) {
  std::vector<std::string> open;
  bool seen_root = false;
  size_t i = 0;
  auto is_name_start = [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  };
  auto is_name_char = [&](char c) {
    return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  };
  auto at = [&](size_t p, std::string_view lit) { return s.compare(p, lit.size(), lit) == 0; };
  auto reference_len = [&](size_t amp) -> size_t {
    size_t semi = s.find(';', amp);
    if (semi == std::string::npos || semi - amp > 12) return 0;
    std::string_view e(s.data() + amp + 1, semi - amp - 1);
    if (e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos") return semi - amp + 1;
    if (e.size() >= 2 && e[0] == '#') {
      bool hex = e[1] == 'x';
      std::string_view digits = e.substr(hex ? 2 : 1);
      if (digits.empty()) return 0;
      for (char c : digits) {
        if (!(hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c))))
          return 0;
      }
      return semi - amp + 1;
    }
    return 0;
  };
  auto where = [&](size_t p) { return " at offset " + std::to_string(p) + ": " + s.substr(p, 60); };
  auto skip_ws = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  auto read_name = [&]() -> std::string {
    size_t b = i;
    if (i >= s.size() || !is_name_start(s[i])) return {};
    while (i < s.size() && is_name_char(s[i])) ++i;
    return s.substr(b, i - b);
  };

  while (i < s.size()) {
    if (s[i] == '<') {
      if (at(i, "<?")) {
        size_t e = s.find("?>", i);
        if (e == std::string::npos) return "unterminated PI" + where(i);
        i = e + 2;
      } else if (at(i, "<!--")) {
        size_t e = s.find("-->", i);
        if (e == std::string::npos) return "unterminated comment" + where(i);
        i = e + 3;
      } else if (at(i, "<![CDATA[")) {
        if (open.empty()) return "CDATA outside root" + where(i);
        size_t e = s.find("]]>", i);
        if (e == std::string::npos) return "unterminated CDATA" + where(i);
        i = e + 3;
      } else if (at(i, "<!")) {
        return "unexpected declaration" + where(i);
      } else if (at(i, "</")) {
        i += 2;
        std::string name = read_name();
        skip_ws();
        if (i >= s.size() || s[i] != '>') return "bad end tag" + where(i);
        ++i;
        if (open.empty() || open.back() != name) return "mismatched </" + name + ">" + where(i);
        open.pop_back();
      } else {
        size_t tag_at = i;
        ++i;
        std::string name = read_name();
        if (name.empty()) return "bad tag name" + where(tag_at);
        if (open.empty()) {
          if (seen_root) return "second root element" + where(tag_at);
          seen_root = true;
        }
        std::set<std::string> attrs;
        bool self_closing = false;
        for (;;) {
          size_t before = i;
          skip_ws();
          if (i >= s.size()) return "unterminated tag" + where(tag_at);
          if (s[i] == '>') { ++i; break; }
          if (at(i, "/>")) { i += 2; self_closing = true; break; }
          if (i == before) return "missing space before attribute" + where(i);
          std::string an = read_name();
          if (an.empty()) return "bad attribute name" + where(i);
          if (!attrs.insert(an).second) return "duplicate attribute " + an + where(i);
          skip_ws();
          if (i >= s.size() || s[i] != '=') return "attribute without value" + where(i);
          ++i;
          skip_ws();
          if (i >= s.size() || (s[i] != '"' && s[i] != '\'')) return "unquoted attribute" + where(i);
          char q = s[i++];
          while (i < s.size() && s[i] != q) {
            if (s[i] == '<') return "'<' in attribute value" + where(i);
            if (s[i] == '&') {
              size_t n = reference_len(i);
              if (!n) return "bad reference in attribute" + where(i);
              i += n;
            } else {
              ++i;
            }
          }
          if (i >= s.size()) return "unterminated attribute" + where(tag_at);
          ++i;
        }
        if (!self_closing) open.push_back(name);
      }
    } else if (s[i] == '&') {
      size_t n = reference_len(i);
      if (!n) return "bad reference" + where(i);
      i += n;
    } else {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(s[i]))) return "text outside root" + where(i);
      if (at(i, "]]>")) return "']]>' in text" + where(i);
      ++i;
    }
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  if (!seen_root) return "no root element";
  return {};
}

// Runs xmllint when available: a real parser also checks encoding validity,
// which the mini checker above does not.
void expect_xmllint_ok(const std::string& doc) {
  if (access("/usr/bin/xmllint", X_OK) != 0) return;
  char path[] = "/tmp/ember_fg_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(path, std::ios::binary);
    f << doc;
  }
  const std::string cmd = std::string("/usr/bin/xmllint --noout ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string msg;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) msg += buf;
  int rc = pclose(p);
  unlink(path);
  EXPECT_EQ(rc, 0) << msg;
}

void expect_well_formed(const std::string& doc) {
  EXPECT_EQ(xml_error(doc), "");
  expect_xmllint_ok(doc);
}

std::string attr_after(const std::string& s, size_t from, const std::string& name) {
  const std::string key = " " + name + "=\"";
  size_t p = s.find(key, from);
  if (p == std::string::npos) return {};
  p += key.size();
  return s.substr(p, s.find('"', p) - p);
}

struct Box {
  bool found = false;
  int occurrences = 0;
  double x = 0, width = 0;
  uint64_t n = 0;
  std::string fill;
  std::string label;  // "" if no <text>
};

// Locates the box for a frame by its tooltip title, whose first line is the
// escaped frame name.
Box find_box(const std::string& svg, const std::string& escaped_name) {
  Box b;
  const std::string key = "<title>" + escaped_name + "\n";
  size_t t = svg.find(key);
  if (t == std::string::npos) return b;
  for (size_t p = t; p != std::string::npos; p = svg.find(key, p + 1)) ++b.occurrences;
  b.found = true;
  size_t g = svg.rfind("<g ", t);
  b.n = std::stoull(attr_after(svg, g, "data-n"));
  size_t r = svg.find("<rect", t);
  b.x = std::stod(attr_after(svg, r, "x"));
  b.width = std::stod(attr_after(svg, r, "width"));
  b.fill = attr_after(svg, r, "fill");
  size_t end = svg.find("</g>", r);
  size_t text = svg.find("<text", r);
  if (text != std::string::npos && text < end) {
    size_t open_end = svg.find('>', text) + 1;
    b.label = svg.substr(open_end, svg.find("</text>", open_end) - open_end);
  }
  return b;
}

FlameStack stack(std::vector<std::string> frames, uint64_t count) {
  FlameStack s;
  s.frames = std::move(frames);
  s.count = count;
  return s;
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

TEST(Flamegraph, MergesStacksAndSizesBoxesByCount) {
  std::vector<FlameStack> stacks = {
      stack({"a", "b", "c"}, 6),
      stack({"a", "b", "d"}, 3),
      stack({"a", "e"}, 1),
  };
  const std::string svg = render_flamegraph_svg(stacks, {});
  expect_well_formed(svg);

  Box all = find_box(svg, "all"), a = find_box(svg, "a"), b = find_box(svg, "b"),
      c = find_box(svg, "c"), d = find_box(svg, "d"), e = find_box(svg, "e");
  for (const Box* box : {&all, &a, &b, &c, &d, &e}) {
    ASSERT_TRUE(box->found);
    EXPECT_EQ(box->occurrences, 1) << "same frame under the same parent must merge";
  }
  EXPECT_EQ(all.n, 10u);
  EXPECT_EQ(a.n, 10u);
  EXPECT_EQ(b.n, 9u);
  EXPECT_EQ(c.n, 6u);
  EXPECT_EQ(d.n, 3u);
  EXPECT_EQ(e.n, 1u);

  // Default width 1200 with 10px margins: "all" spans 1180px.
  EXPECT_NEAR(all.width, 1180.0, 0.01);
  const double unit = all.width / 10.0;
  EXPECT_NEAR(a.width, 10 * unit, 0.02);
  EXPECT_NEAR(b.width, 9 * unit, 0.02);
  EXPECT_NEAR(c.width, 6 * unit, 0.02);
  EXPECT_NEAR(d.width, 3 * unit, 0.02);
  EXPECT_NEAR(e.width, 1 * unit, 0.02);
  EXPECT_NEAR(c.width / d.width, 2.0, 0.001);

  // Children are packed left to right from the parent's left edge.
  EXPECT_NEAR(b.x, a.x, 0.01);
  EXPECT_NEAR(c.x, b.x, 0.01);
  EXPECT_NEAR(d.x, c.x + c.width, 0.02);
  EXPECT_NEAR(e.x, b.x + b.width, 0.02);
}

// A differential graph: widths from the new profile, colour from the change
// in each frame's share against the base (difffolded.pl's red and blue).
TEST(Flamegraph, DifferentialColoursByChangeInShare) {
  std::vector<FlameStack> stacks = {stack({"main", "grew"}, 70), stack({"main", "shrank"}, 30),
                                    stack({"main", "gone"}, 0)};
  stacks[0].base_count = 30;
  stacks[1].base_count = 60;
  stacks[2].base_count = 10;
  FlamegraphOptions o;
  o.base_total = 100;
  const std::string svg = render_flamegraph_svg(stacks, o);
  expect_well_formed(svg);
  Box main = find_box(svg, "main"), grew = find_box(svg, "grew"), shrank = find_box(svg, "shrank");
  ASSERT_TRUE(main.found && grew.found && shrank.found);
  EXPECT_FALSE(find_box(svg, "gone").found);  // only in the base: nothing to draw
  EXPECT_EQ(grew.n, 70u);
  // grew: 30% -> 70%, the largest change, at full red; shrank: 60% -> 30%,
  // three quarters of it in blue; main: 100% in both (the stack only in the
  // base counts towards it), so white.
  EXPECT_EQ(grew.fill, "#fa3c3c");
  EXPECT_EQ(shrank.fill, "#6c6cfa");
  EXPECT_EQ(main.fill, "#fafafa");
  EXPECT_NE(svg.find("<title>grew\n70 samples (70.00%)\n+40.00 points against the base (30.00% there)"),
            std::string::npos);
  EXPECT_NE(svg.find("-30.00 points against the base (60.00% there)"), std::string::npos);
}

// The HTML page embeds the stacks for its table and sandwich views (the
// browser test clicks through them): names once each, stacks as
// [count, name indices root first], and nothing that could end the script.
TEST(Flamegraph, HtmlEmbedsTheStacksForItsOtherViews) {
  FlamegraphOptions opts;
  opts.count_name = "samples";
  const std::vector<FlameStack> stacks = {stack({"main", "work", "compute"}, 7), stack({"main", "io_[k]"}, 3),
                                          stack({"main", "</script><b>\"x\\"}, 1), stack({"gone"}, 0)};
  const std::string html = render_flamegraph_html(stacks, opts);
  size_t begin = html.find("<script type=\"application/json\" id=\"ember-data\">");
  ASSERT_NE(begin, std::string::npos);
  size_t end = html.find("</script>", begin);
  const std::string data = html.substr(begin, end - begin);
  EXPECT_NE(data.find("{\"unit\":\"samples\",\"ns\":0,\"names\":[\"main\",\"work\",\"compute\",\"io_[k]\","
                      "\"\\u003c/script>\\u003cb>\\\"x\\\\\"],\"stacks\":[[7,0,1,2],[3,0,3],[1,0,4]]}"),
            std::string::npos)
      << data;
  EXPECT_EQ(data.find("gone"), std::string::npos);  // no samples, not embedded
  for (const char* id : {"ember-view-flame", "ember-view-table", "ember-view-sandwich", "ember-search"})
    EXPECT_NE(html.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
}

TEST(Flamegraph, RootIsAtTheBottom) {
  const std::string svg = render_flamegraph_svg({stack({"a", "b"}, 1)}, {});
  auto y_of = [&](const std::string& name) {
    size_t t = svg.find("<title>" + name + "\n");
    return std::stod(attr_after(svg, svg.find("<rect", t), "y"));
  };
  EXPECT_GT(y_of("all"), y_of("a"));
  EXPECT_GT(y_of("a"), y_of("b"));
}

TEST(Flamegraph, EscapesTemplateNamesAndStaysWellFormed) {
  const std::string nasty = "std::vector<int, std::allocator<int> >::push_back(int&&)";
  const std::string quoted = "operator\"\" _q<'x'>(char const*)";
  FlamegraphOptions opts;
  opts.title = "Profile of <a&b> \"quoted\"";
  opts.subtitle = "ember record -- ./app 'x' < in > out";
  opts.count_name = "samples & <things>";
  const std::string svg =
      render_flamegraph_svg({stack({"main", nasty}, 5), stack({"main", quoted}, 5)}, opts);
  expect_well_formed(svg);

  Box b = find_box(svg, "std::vector&lt;int, std::allocator&lt;int&gt; &gt;::push_back(int&amp;&amp;)");
  EXPECT_TRUE(b.found);
  EXPECT_EQ(svg.find(nasty), std::string::npos) << "raw name leaked into the document";
  EXPECT_TRUE(find_box(svg, "operator&quot;&quot; _q&lt;&#39;x&#39;&gt;(char const*)").found);
  EXPECT_NE(svg.find("Profile of &lt;a&amp;b&gt; &quot;quoted&quot;"), std::string::npos);
  EXPECT_NE(svg.find("data-unit=\"samples &amp; &lt;things&gt;\""), std::string::npos);

  const std::string html =
      render_flamegraph_html({stack({"main", nasty}, 5), stack({"main", quoted}, 5)}, opts);
  EXPECT_NE(html.find("<title>Profile of &lt;a&amp;b&gt; &quot;quoted&quot;</title>"), std::string::npos);
  EXPECT_EQ(html.find(nasty), std::string::npos);
}

TEST(Flamegraph, BrokenUtf8AndControlCharactersDoNotBreakXml) {
  const std::string bad = std::string("bad\xff\xfe name\x01\x1b[0m") + "\xc3\x28" + "\xed\xa0\x80" + "\xe2\x82";
  const std::string svg = render_flamegraph_svg({stack({"ok \xc3\xa9t\xc3\xa9", bad}, 3)}, {});
  expect_well_formed(svg);
  EXPECT_TRUE(find_box(svg, "ok \xc3\xa9t\xc3\xa9").found) << "valid UTF-8 passes through untouched";
}

TEST(Flamegraph, KernelUnknownAndUserFramesGetDistinctColorFamilies) {
  const std::string svg = render_flamegraph_svg(
      {stack({"main", "do_work", "sys_read_[k]"}, 4), stack({"main", "[unknown]"}, 2),
       stack({"main", "[unknown:0x1234]"}, 2), stack({"main", "Foo::bar<int>()"}, 2)},
      {});
  expect_well_formed(svg);
  auto rgb = [](const std::string& hex) {
    EXPECT_EQ(hex.size(), 7u) << hex;
    return std::vector<int>{std::stoi(hex.substr(1, 2), nullptr, 16), std::stoi(hex.substr(3, 2), nullptr, 16),
                            std::stoi(hex.substr(5, 2), nullptr, 16)};
  };
  Box kernel = find_box(svg, "sys_read_[k]"), user = find_box(svg, "do_work"),
      unknown = find_box(svg, "[unknown]"), unknown2 = find_box(svg, "[unknown:0x1234]"),
      cxx = find_box(svg, "Foo::bar&lt;int&gt;()");
  ASSERT_TRUE(kernel.found && user.found && unknown.found && unknown2.found && cxx.found);
  EXPECT_NE(kernel.fill, user.fill);

  auto k = rgb(kernel.fill), u = rgb(user.fill), q = rgb(unknown.fill), q2 = rgb(unknown2.fill),
       c = rgb(cxx.fill);
  EXPECT_GT(k[2], k[0]) << "kernel frames are blue/teal";
  EXPECT_GT(u[0], u[2]) << "user frames are warm";
  EXPECT_GT(c[0], c[2]) << "C++ frames stay warm";
  EXPECT_TRUE(q[0] == q[1] && q[1] == q[2]) << "unknown frames are grey";
  EXPECT_TRUE(q2[0] == q2[1] && q2[1] == q2[2]);

  // Same name, same colour, regardless of where it appears or what else is in the profile.
  const std::string other = render_flamegraph_svg({stack({"x", "y", "z", "do_work"}, 9)}, {});
  EXPECT_EQ(find_box(other, "do_work").fill, user.fill);
}

TEST(Flamegraph, EmptyInputSaysThereAreNoSamples) {
  for (const auto& stacks : {std::vector<FlameStack>{}, std::vector<FlameStack>{stack({"a"}, 0)}}) {
    const std::string svg = render_flamegraph_svg(stacks, {});
    expect_well_formed(svg);
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    EXPECT_NE(svg.find("No samples"), std::string::npos);
    EXPECT_EQ(svg.find("<title>all"), std::string::npos);
    const std::string html = render_flamegraph_html(stacks, {});
    EXPECT_NE(html.find("No samples"), std::string::npos);
  }
}

TEST(Flamegraph, HtmlEmbedsTheSvgWithoutExternalResources) {
  FlamegraphOptions opts;
  opts.ns_per_count = 10'000'000;
  const std::vector<FlameStack> stacks = {stack({"main", "work", "compute"}, 7), stack({"main", "io_[k]"}, 3)};
  const std::string html = render_flamegraph_html(stacks, opts);
  const std::string svg = render_flamegraph_svg(stacks, opts);

  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  size_t svg_begin = html.find("<svg");
  size_t svg_end = html.find("</svg>");
  ASSERT_NE(svg_begin, std::string::npos);
  ASSERT_NE(svg_end, std::string::npos);
  const std::string embedded = html.substr(svg_begin, svg_end + 6 - svg_begin);
  // Same markup as the standalone file, minus the XML declaration.
  EXPECT_NE(svg.find(embedded), std::string::npos);
  expect_well_formed(embedded);
  EXPECT_EQ(html.find("<?xml"), std::string::npos);

  for (const char* scheme : {"http://", "https://"}) {
    for (size_t p = html.find(scheme); p != std::string::npos; p = html.find(scheme, p + 1)) {
      EXPECT_EQ(html.compare(p, 26, "http://www.w3.org/2000/svg"), 0) << html.substr(p, 60);
    }
  }
  for (const char* ext : {"<link", "src=", "@import", "url(http", "href="}) {
    EXPECT_EQ(html.find(ext), std::string::npos) << ext;
  }
}

TEST(Flamegraph, InteractiveScriptIsEmbeddedSafely) {
  const std::string svg = render_flamegraph_svg({stack({"a", "b"}, 2)}, {});
  size_t s = svg.find("<script");
  ASSERT_NE(s, std::string::npos);
  size_t cdata = svg.find("<![CDATA[", s);
  size_t end = svg.find("</script>", s);
  ASSERT_LT(cdata, end);
  // Exactly one CDATA terminator, right before </script>.
  size_t term = svg.find("]]>", cdata);
  EXPECT_EQ(term + 3, end);
  const std::string js = svg.substr(cdata + 9, term - cdata - 9);
  for (const char* feature : {"zoom(", "resetZoom", "RegExp", "prompt(", "Escape", "ctrlKey", "'/'",
                              "Matched: "}) {
    EXPECT_NE(js.find(feature), std::string::npos) << feature;
  }
  EXPECT_NE(svg.find("Reset zoom"), std::string::npos);
  EXPECT_NE(svg.find(">Search<"), std::string::npos);

  // If node is around, at least make sure the script parses.
  if (access("/usr/bin/node", X_OK) == 0) {
    char path[] = "/tmp/ember_fg_js_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    {
      std::ofstream f(path);
      f << js;
    }
    const std::string cmd = std::string("/usr/bin/node --check ") + path + " 2>&1";
    int rc = std::system(cmd.c_str());
    unlink(path);
    EXPECT_EQ(rc, 0);
  }
}

TEST(Flamegraph, TooltipFallbackShowsCountsPercentAndCpuTime) {
  FlamegraphOptions opts;
  opts.ns_per_count = 10'000'000;  // 100 Hz
  const std::string svg = render_flamegraph_svg({stack({"a", "b"}, 3), stack({"a"}, 1)}, opts);
  EXPECT_NE(svg.find("<title>b\n3 samples (75.00%), 30.00 ms</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>all\n4 samples (100.00%), 40.00 ms</title>"), std::string::npos);
  EXPECT_NE(svg.find("data-ns=\"10000000\""), std::string::npos);
  // Self counts ride along for the interactive tooltip.
  size_t a = svg.find("<title>a\n");
  EXPECT_EQ(attr_after(svg, svg.rfind("<g ", a), "data-s"), "1");
}

TEST(Flamegraph, LabelsAreTruncatedToFitTheirBox) {
  const std::string long_name(100, 'x');
  const std::string svg = render_flamegraph_svg({stack({"main", long_name}, 20), stack({"main", "short"}, 80)}, {});
  Box b = find_box(svg, long_name);
  ASSERT_TRUE(b.found);
  // 20% of 1180px = 236px: room for a prefix, not the full 100 characters.
  ASSERT_FALSE(b.label.empty());
  EXPECT_EQ(b.label.substr(b.label.size() - 2), "..");
  EXPECT_LT(b.label.size(), long_name.size());
  EXPECT_LE(b.label.size() * 7.2, b.width - 6);
  EXPECT_GT(b.label.size(), 20u);
  EXPECT_EQ(find_box(svg, "short").label, "short");

  // Truncation never splits a multi-byte character.
  std::string wide;
  for (int i = 0; i < 60; ++i) wide += "\xc3\xa9";
  const std::string svg2 = render_flamegraph_svg({stack({wide}, 1), stack({"z"}, 9)}, {});
  expect_well_formed(svg2);
}

TEST(Flamegraph, InvisibleBoxesAreOmittedButStillCounted) {
  const std::string svg = render_flamegraph_svg(
      {stack({"a", "huge"}, 100'000'000), stack({"a", "tiny", "deeper"}, 1)}, {});
  EXPECT_FALSE(find_box(svg, "tiny").found);
  EXPECT_FALSE(find_box(svg, "deeper").found);
  EXPECT_EQ(find_box(svg, "a").n, 100'000'001u);
  EXPECT_EQ(find_box(svg, "all").n, 100'000'001u);

  FlamegraphOptions keep_all;
  keep_all.min_frame_width_px = 0;
  EXPECT_TRUE(find_box(render_flamegraph_svg({stack({"a", "huge"}, 100'000'000), stack({"a", "tiny"}, 1)},
                                             keep_all),
                       "tiny")
                  .found);
}

TEST(Flamegraph, EmptyStackCountsTowardTheRootOnly) {
  const std::string svg = render_flamegraph_svg({stack({}, 5), stack({"a"}, 5)}, {});
  EXPECT_EQ(find_box(svg, "all").n, 10u);
  EXPECT_EQ(find_box(svg, "a").n, 5u);
  EXPECT_NEAR(find_box(svg, "a").width, 590.0, 0.01);
}

TEST(Flamegraph, LargeDeepProfileStaysCompact) {
  // 20k distinct stacks, depth 127, as produced by a busy recursive program.
  // (Rendering speed is measured in bench/, not here.)
  std::vector<std::string> pool;
  for (int i = 0; i < 400; ++i) pool.push_back("fn_" + std::to_string(i));
  std::vector<FlameStack> stacks;
  stacks.reserve(20'000);
  uint64_t seed = 12345;
  auto next = [&] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  for (int s = 0; s < 20'000; ++s) {
    FlameStack st;
    st.frames.reserve(127);
    st.frames.push_back("main");
    for (int d = 1; d < 127; ++d) {
      // Shallow frames are drawn from few names so stacks share prefixes.
      const uint64_t fanout = d < 4 ? 3 : 400;
      st.frames.push_back(pool[next() % fanout]);
    }
    st.count = 1 + next() % 5;
    stacks.push_back(std::move(st));
  }
  const std::string svg = render_flamegraph_svg(stacks, {});
  // Nearly every one of the 2.5M merged nodes is far below 0.1px, so the
  // output stays small.
  EXPECT_LT(svg.size(), 30u * 1024 * 1024);
  EXPECT_TRUE(find_box(svg, "main").found);
  EXPECT_EQ(xml_error(svg), "");
}

}  // namespace
}  // namespace ember
