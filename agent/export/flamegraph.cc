#include "agent/export/flamegraph.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/utf8.h"

namespace ember {
namespace {

constexpr double kPadX = 10;
constexpr int kFrameH = 16;        // row pitch; boxes are 1px shorter to leave a gap
constexpr double kCharW = 7.23;    // advance of a 12px DejaVu/Menlo/Liberation Mono glyph, rounded up
constexpr double kLabelPad = 6;    // 3px of breathing room on each side of a label
constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// ---------------------------------------------------------------------------
// Text handling
// ---------------------------------------------------------------------------

// Symbol names come from binaries we do not control; one stray byte that is
// not valid UTF-8 (or a control character) would make the whole document
// unparseable, so names are normalised before they get anywhere near XML.
std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    bool ok = i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and the two non-characters are rejected by
    // XML parsers even though they decode fine.
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
               cp == 0xFFFF)) {
      ok = false;
    }
    if (!ok) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(s.data() + i, len);
    i += len;
  }
  return out;
}

// Input must already be sanitized. Quotes are escaped too so the same routine
// serves attribute values and element content.
void append_escaped(std::string& out, std::string_view s) {
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep;
    switch (s[i]) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      case '\'': rep = "&#39;"; break;
      default: continue;
    }
    out.append(s.data() + start, i - start);
    out += rep;
    start = i + 1;
  }
  out.append(s.data() + start, s.size() - start);
}

// Bytes of the character at s[i]; an invalid byte counts as one character
// (it is drawn as U+FFFD).
size_t utf8_seq_len(std::string_view s, size_t i) {
  uint32_t cp;
  size_t n = utf8_decode(s, i, &cp);
  return n ? n : 1;
}

// Labels are measured in UTF-16 code units because that is what the
// in-browser relabelling (String.length) counts; using the same unit keeps the
// labels identical before and after the script touches them.
size_t utf16_units(std::string_view s) {
  size_t units = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_seq_len(s, i);
    units += len == 4 ? 2 : 1;
    i += len;
  }
  return units;
}

// Returns the label to draw in a box of width `box_w`, or "" if not even a
// couple of characters fit (an unreadable stub is just noise).
std::string fit_label(std::string_view name, double box_w) {
  const double room = box_w - kLabelPad;
  if (room <= 0) return {};
  const auto fit = static_cast<size_t>(std::floor(room / kCharW));
  if (utf16_units(name) <= fit) return std::string(name);
  if (fit < 3) return {};
  const size_t budget = fit - 2;
  size_t used = 0, i = 0;
  while (i < name.size()) {
    const size_t len = utf8_seq_len(name, i);
    const size_t u = len == 4 ? 2 : 1;
    if (used + u > budget) break;
    used += u;
    i += len;
  }
  std::string out(name.substr(0, i));
  out += "..";
  return out;
}

// ---------------------------------------------------------------------------
// Number formatting
// ---------------------------------------------------------------------------

void append_u64(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_fixed(std::string& out, double v, int precision) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, precision);
  if (r.ec != std::errc()) {
    out += '0';
    return;
  }
  out.append(buf, r.ptr);
}

// Kept in sync with dur() in the embedded script so the no-script fallback
// tooltip (<title>) reads the same as the interactive one.
void append_duration(std::string& out, double ns) {
  if (ns < 1e3) {
    append_fixed(out, ns, 0);
    out += " ns";
  } else if (ns < 1e6) {
    append_fixed(out, ns / 1e3, 2);
    out += " \xC2\xB5s";
  } else if (ns < 1e9) {
    append_fixed(out, ns / 1e6, 2);
    out += " ms";
  } else if (ns < 60e9) {
    append_fixed(out, ns / 1e9, 2);
    out += " s";
  } else if (ns < 3600e9) {
    append_fixed(out, ns / 60e9, 1);
    out += " min";
  } else {
    append_fixed(out, ns / 3600e9, 2);
    out += " h";
  }
}

// "<n> <unit> (<pct>%)[, <time>]" -- mirrors amount() in the script.
void append_amount(std::string& out, uint64_t v, uint64_t total, const std::string& unit_escaped,
                   uint64_t ns_per_count) {
  append_u64(out, v);
  out += ' ';
  out += unit_escaped;
  out += " (";
  append_fixed(out, total ? 100.0 * static_cast<double>(v) / static_cast<double>(total) : 0.0, 2);
  out += "%)";
  if (ns_per_count > 0) {
    out += ", ";
    append_duration(out, static_cast<double>(v) * static_cast<double>(ns_per_count));
  }
}

// ---------------------------------------------------------------------------
// Colours
// ---------------------------------------------------------------------------

uint64_t hash_name(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  // FNV alone leaves the high bits poorly mixed for short names, and we take
  // colour channels from several bit ranges.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

void append_hex2(std::string& out, unsigned v) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += kHex[(v >> 4) & 0xF];
  out += kHex[v & 0xF];
}

// Colour depends only on the name, so the same function keeps its colour
// across re-renders and between profiles being compared side by side.
std::string color_for(std::string_view name) {
  const uint64_t h = hash_name(name);
  unsigned r, g, b;
  const bool kernel = name.size() >= 4 && name.substr(name.size() - 4) == "_[k]";
  const bool unknown = name.substr(0, 8) == "[unknown";
  if (unknown) {
    r = g = b = 170 + static_cast<unsigned>(h % 40);
  } else if (kernel) {
    r = 40 + static_cast<unsigned>(h % 50);
    g = 140 + static_cast<unsigned>((h >> 8) % 70);
    b = 185 + static_cast<unsigned>((h >> 16) % 60);
  } else {
    r = 205 + static_cast<unsigned>(h % 51);
    g = 60 + static_cast<unsigned>((h >> 8) % 160);
    b = 10 + static_cast<unsigned>((h >> 16) % 55);
  }
  std::string out = "#";
  append_hex2(out, r);
  append_hex2(out, g);
  append_hex2(out, b);
  return out;
}

// Differential graphs: white for no change, towards red (grew) or blue
// (shrank) in proportion to the change against the largest one.
std::string diff_color(double delta, double max_abs) {
  double t = max_abs > 0 ? std::min(1.0, std::fabs(delta) / max_abs) : 0;
  auto fade = static_cast<unsigned>(std::lround(250 - 190 * t));  // the other two channels
  std::string out = "#";
  if (delta >= 0) {
    append_hex2(out, 250);
    append_hex2(out, fade);
    append_hex2(out, fade);
  } else {
    append_hex2(out, fade);
    append_hex2(out, fade);
    append_hex2(out, 250);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Call tree
// ---------------------------------------------------------------------------

constexpr uint32_t kRoot = UINT32_MAX;  // name of the synthetic "all" box

// Stacks with names replaced by their alphabetical rank, flattened.
struct Interned {
  std::vector<std::string_view> names;  // by rank; views into the caller's stacks
  std::vector<uint32_t> frames;         // ranks of all kept stacks, back to back
  std::vector<size_t> begin;            // kept stack i is frames[begin[i] .. begin[i+1])
  std::vector<uint64_t> count;
  std::vector<uint64_t> base;  // base_count of each kept stack (differential graphs)
  uint64_t total = 0;
};

// `differential`: stacks only in the base (count 0, base_count > 0) are kept,
// with no width, so their base counts still reach their ancestors.
Interned intern(const std::vector<FlameStack>& stacks, bool differential) {
  Interned in;
  std::unordered_map<std::string_view, uint32_t> ids;
  std::vector<std::string_view> by_id;
  in.begin.push_back(0);
  const FlameStack* prev = nullptr;
  for (const FlameStack& st : stacks) {
    if (st.count == 0 && !(differential && st.base_count > 0)) continue;
    for (size_t d = 0; d < st.frames.size(); ++d) {
      const std::string& f = st.frames[d];
      // Consecutive stacks usually share a long prefix (collectors emit them
      // sorted or grouped); a string compare is much cheaper than a hash.
      if (prev && d < prev->frames.size() && prev->frames[d] == f) {
        const size_t prev_base = in.begin[in.begin.size() - 2];
        in.frames.push_back(in.frames[prev_base + d]);
        continue;
      }
      auto [it, fresh] = ids.try_emplace(f, static_cast<uint32_t>(by_id.size()));
      if (fresh) by_id.push_back(f);
      in.frames.push_back(it->second);
    }
    in.begin.push_back(in.frames.size());
    in.count.push_back(st.count);
    in.base.push_back(st.base_count);
    in.total += st.count;
    prev = &st;
  }

  // Ranking names alphabetically once lets everything downstream compare
  // integers, and makes sibling order alphabetical: graphs of the same
  // program then look alike regardless of the order samples arrived in.
  std::vector<uint32_t> order(by_id.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return by_id[a] < by_id[b]; });
  std::vector<uint32_t> rank(by_id.size());
  in.names.resize(by_id.size());
  for (uint32_t r = 0; r < order.size(); ++r) {
    rank[order[r]] = r;
    in.names[r] = by_id[order[r]];
  }
  for (uint32_t& f : in.frames) f = rank[f];
  return in;
}

struct Placed {
  uint32_t name;   // rank, or kRoot
  uint32_t depth;  // 0 for "all"
  uint64_t x;      // left edge, in counts from the left of "all"
  uint64_t total;
  uint64_t self;
  uint64_t base;   // differential graphs: the node's inclusive count in the base profile
};

// Merges the stacks into a call tree and lays it out in one pass, keeping
// only boxes at least `min_px` wide. Sorted stacks enumerate the merged tree
// in order: each stack shares a prefix with the previous one, frames beyond
// it are new nodes, and a node is finished once a stack leaves it -- its
// samples are then exactly the contiguous run since it was opened. So the
// full tree (one node per distinct prefix: millions for deep, varied
// profiles) never has to exist in memory, only the boxes that will be drawn.
std::vector<Placed> merge_and_layout(const Interned& in, double px_per_count, double min_px,
                                     uint32_t* max_depth) {
  const size_t n = in.count.size();
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  const uint32_t* f = in.frames.data();
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return std::lexicographical_compare(f + in.begin[a], f + in.begin[a + 1], f + in.begin[b],
                                        f + in.begin[b + 1]);
  });

  struct Open {
    uint32_t name;
    uint64_t x;
    uint64_t self;
    uint64_t x_base;  // cum_base when the node was opened
  };
  std::vector<Open> path{{kRoot, 0, 0, 0}};
  std::vector<Placed> out;
  uint64_t cum = 0, cum_base = 0;
  auto close_deepest = [&] {
    const Open& o = path.back();
    const auto depth = static_cast<uint32_t>(path.size() - 1);
    const uint64_t total = cum - o.x;
    // A child is never wider than its parent, so dropping a box never leaves
    // a visible box floating over a gap.
    if (depth == 0 || static_cast<double>(total) * px_per_count >= min_px) {
      out.push_back({o.name, depth, o.x, total, o.self, cum_base - o.x_base});
    }
    path.pop_back();
  };
  for (uint32_t s : order) {
    const uint32_t* fr = f + in.begin[s];
    const size_t len = in.begin[s + 1] - in.begin[s];
    size_t common = 0;
    while (common + 1 < path.size() && common < len && path[common + 1].name == fr[common]) ++common;
    while (path.size() > common + 1) close_deepest();
    for (size_t d = common; d < len; ++d) path.push_back({fr[d], cum, 0, cum_base});
    path.back().self += in.count[s];
    cum += in.count[s];
    cum_base += in.base[s];
  }
  while (!path.empty()) close_deepest();

  // Finishing order is post-order; (x, depth) order is pre-order, which
  // keeps the document readable (callers before callees).
  std::sort(out.begin(), out.end(), [](const Placed& a, const Placed& b) {
    return a.x != b.x ? a.x < b.x : a.depth < b.depth;
  });
  *max_depth = 0;
  for (const Placed& p : out) *max_depth = std::max(*max_depth, p.depth);
  return out;
}

// ---------------------------------------------------------------------------
// Document
// ---------------------------------------------------------------------------

const char* const kStyle = R"CSS(
.frames g{cursor:pointer}
.frames rect{rx:2px;ry:2px}
.frames g:hover rect{stroke:#1a1a1a;stroke-width:0.8}
.frames text,.tip text,.details,.matched{font-family:Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:12px;fill:#111}
.frames text{pointer-events:none}
.frames g.anc{opacity:0.6}
.title{font-family:sans-serif;font-size:17px;font-weight:bold;fill:#222}
.subtitle{font-family:sans-serif;font-size:12px;fill:#555}
.empty{font-family:sans-serif;font-size:14px;fill:#555}
.btn{font-family:sans-serif;font-size:12px;fill:#1d4ed8;cursor:pointer}
.btn:hover{text-decoration:underline}
.hidden{display:none}
.tip rect{fill:#fffdf3;stroke:#777;stroke-width:0.8}
.tip .nm{font-weight:bold}
)CSS";

// Everything interactive lives here. The script reads its numbers from data-*
// attributes on the root element and the frames themselves, so it is static
// text and the C++ side never has to produce JavaScript string literals.
// It must never contain the CDATA terminator.
const char* const kScript = R"JS(
(function () {
  'use strict';
  var cur = document.currentScript;
  var svg = (cur && cur.ownerSVGElement) || document.getElementById('ember-flamegraph');
  if (!svg) return;
  var NS = svg.namespaceURI;
  function num(k) { return parseFloat(svg.getAttribute('data-' + k)) || 0; }
  var total = num('total'), nsPer = num('ns'), pad = num('pad'), avail = num('avail'),
      base = num('base'), fh = num('fh'), cw = num('cw') || 7.2;
  var unit = svg.getAttribute('data-unit') || 'samples';
  var vb = svg.viewBox.baseVal, W = vb.width, H = vb.height;
  function q(sel) { return svg.querySelector(sel); }
  var framesG = q('.frames'), details = q('.details'), matched = q('.matched'),
      resetBtn = q('.reset'), searchBtn = q('.search'), tip = q('.tip');
  if (!framesG || !total) return;
  var tipBox = tip.querySelector('rect'), tipText = tip.querySelector('text');
  var hint = details.textContent;
  var HIGHLIGHT = '#d946ef';

  // Per-frame state in flat arrays: zooming and searching walk every frame,
  // and typed arrays keep that cheap for profiles with 100k+ boxes.
  var G = Array.prototype.slice.call(framesG.children), n = G.length;
  var X = new Float64Array(n), N = new Float64Array(n), S = new Float64Array(n),
      Y = new Float64Array(n), D = new Int32Array(n);
  var names = new Array(n), fills = new Array(n), rects = new Array(n), labels = new Array(n),
      extras = new Array(n);
  for (var i = 0; i < n; i++) {
    var g = G[i];
    g.__emberIndex = i;
    X[i] = parseFloat(g.getAttribute('data-x'));
    N[i] = parseFloat(g.getAttribute('data-n'));
    S[i] = parseFloat(g.getAttribute('data-s')) || 0;
    // The title's first line is the name (names never hold a newline), the
    // second its amount, and any more (a differential graph's change) are
    // shown in the tooltip as they are.
    var t = g.querySelector('title'), s = t ? t.textContent.split('\n') : [''];
    names[i] = s[0];
    extras[i] = s.slice(2);
    // The <title> is only the no-script fallback; left in place the browser
    // would pop its own tooltip on top of ours.
    if (t) g.removeChild(t);
    var r = g.querySelector('rect');
    rects[i] = r;
    fills[i] = r.getAttribute('fill');
    Y[i] = parseFloat(r.getAttribute('y'));
    D[i] = Math.round((base - Y[i]) / fh) - 1;
    labels[i] = g.querySelector('text');
  }

  function clip(s, px) {
    var fit = Math.floor(px / cw);
    if (s.length <= fit) return s;
    if (fit < 3) return '';
    var cut = fit - 2, c = s.charCodeAt(cut - 1);
    if (c >= 0xD800 && c <= 0xDBFF) cut--;
    return s.slice(0, cut) + '..';
  }

  function place(i, x, w) {
    var r = rects[i];
    r.setAttribute('x', x.toFixed(2));
    r.setAttribute('width', w.toFixed(2));
    var s = clip(names[i], w - 6), t = labels[i];
    if (!t) {
      if (!s) return;
      t = labels[i] = document.createElementNS(NS, 'text');
      t.setAttribute('y', (Y[i] + fh - 4).toFixed(2));
      G[i].appendChild(t);
    }
    t.setAttribute('x', (x + 3).toFixed(2));
    t.textContent = s;
  }

  function show(i, on) { G[i].style.display = on ? '' : 'none'; }

  var zoomed = -1;
  function resetZoom() {
    zoomed = -1;
    var k = avail / total;
    for (var i = 0; i < n; i++) {
      show(i, true);
      G[i].classList.remove('anc');
      place(i, pad + X[i] * k, N[i] * k);
    }
    resetBtn.classList.add('hidden');
  }

  // Frames at one depth never overlap, so interval containment alone tells
  // ancestors (contain the target) and descendants (inside it) apart from
  // everything else.
  function zoom(z) {
    if (z < 0 || D[z] === 0) { resetZoom(); return; }
    zoomed = z;
    var zx = X[z], zn = N[z], zd = D[z], k = avail / zn;
    for (var i = 0; i < n; i++) {
      var x = X[i], w = N[i], d = D[i];
      var keep = d <= zd ? (x <= zx && x + w >= zx + zn) : (x >= zx && x + w <= zx + zn);
      if (!keep) { show(i, false); continue; }
      show(i, true);
      G[i].classList.toggle('anc', d < zd);
      if (d <= zd) place(i, pad, avail);
      else place(i, pad + (x - zx) * k, w * k);
    }
    resetBtn.classList.remove('hidden');
  }

  function pct(v) { return (100 * v / total).toFixed(2) + '%'; }
  function dur(ns) {
    if (ns < 1e3) return ns.toFixed(0) + ' ns';
    if (ns < 1e6) return (ns / 1e3).toFixed(2) + ' \u00b5s';
    if (ns < 1e9) return (ns / 1e6).toFixed(2) + ' ms';
    if (ns < 60e9) return (ns / 1e9).toFixed(2) + ' s';
    if (ns < 3600e9) return (ns / 60e9).toFixed(1) + ' min';
    return (ns / 3600e9).toFixed(2) + ' h';
  }
  function amount(v) {
    var s = v + ' ' + unit + ' (' + pct(v) + ')';
    if (nsPer > 0) s += ', ' + dur(v * nsPer);
    return s;
  }

  function setDetails(s) {
    var reserve = matched.textContent ? 300 : 0;
    details.textContent = clip(s, avail - reserve);
  }

  // ---- tooltip ----
  var tipFor = -1;
  function wrap(s, max, maxLines) {
    var out = [];
    while (s.length > max && out.length < maxLines - 1) { out.push(s.slice(0, max)); s = s.slice(max); }
    if (s.length > max) s = s.slice(0, max - 2) + '..';
    out.push(s);
    return out;
  }
  function fillTip(i) {
    var maxc = Math.max(20, Math.floor((Math.min(W - 20, 760) - 16) / cw));
    var lines = wrap(names[i], maxc, 6), nameLines = lines.length;
    lines.push(amount(N[i]));
    if (S[i] > 0) lines.push('self: ' + amount(S[i]));
    for (var x = 0; x < extras[i].length; x++) lines.push(extras[i][x]);
    if (zoomed >= 0 && D[i] > D[zoomed])
      lines.push((100 * N[i] / N[zoomed]).toFixed(2) + '% of ' + clip(names[zoomed], 240));
    while (tipText.firstChild) tipText.removeChild(tipText.firstChild);
    var longest = 0;
    for (var k = 0; k < lines.length; k++) {
      var ts = document.createElementNS(NS, 'tspan');
      ts.setAttribute('x', '8');
      ts.setAttribute('dy', k === 0 ? '0' : '15');
      if (k < nameLines) ts.setAttribute('class', 'nm');
      ts.textContent = lines[k];
      tipText.appendChild(ts);
      longest = Math.max(longest, lines[k].length);
    }
    tipText.setAttribute('y', '17');
    var w = 0;
    try { w = tipText.getBBox().width; } catch (e) {}
    if (!w) w = longest * cw;
    tipBox.setAttribute('width', (w + 16).toFixed(0));
    tipBox.setAttribute('height', (lines.length * 15 + 9).toFixed(0));
  }
  function toSvg(e) {
    var m = svg.getScreenCTM();
    if (!m) return { x: e.clientX, y: e.clientY };
    var p = svg.createSVGPoint();
    p.x = e.clientX; p.y = e.clientY;
    return p.matrixTransform(m.inverse());
  }
  function moveTip(e) {
    var p = toSvg(e);
    var w = parseFloat(tipBox.getAttribute('width')) || 0, h = parseFloat(tipBox.getAttribute('height')) || 0;
    var x = p.x + 14, y = p.y + 18;
    if (x + w > W - 2) x = Math.max(2, p.x - w - 10);
    if (y + h > H - 2) y = Math.max(2, p.y - h - 10);
    tip.setAttribute('transform', 'translate(' + x.toFixed(1) + ',' + y.toFixed(1) + ')');
  }
  function hideTip() {
    tipFor = -1;
    tip.classList.add('hidden');
    setDetails(hint);
  }
  function frameOf(e) {
    for (var el = e.target; el && el !== framesG; el = el.parentNode) {
      if (el.parentNode === framesG) return el.__emberIndex === undefined ? -1 : el.__emberIndex;
    }
    return -1;
  }

  framesG.addEventListener('mousemove', function (e) {
    var i = frameOf(e);
    if (i < 0) { hideTip(); return; }
    if (i !== tipFor) {
      tipFor = i;
      tip.classList.remove('hidden');  // must be rendered for getBBox
      fillTip(i);
      setDetails(names[i] + ' \u2014 ' + amount(N[i]));
    }
    moveTip(e);
  });
  framesG.addEventListener('mouseleave', hideTip);
  framesG.addEventListener('click', function (e) {
    var i = frameOf(e);
    if (i < 0) return;
    zoom(i);
    hideTip();
  });
  resetBtn.addEventListener('click', function () { resetZoom(); hideTip(); });

  // ---- search ----
  var query = '';
  function clearSearch() {
    query = '';
    for (var i = 0; i < n; i++) rects[i].setAttribute('fill', fills[i]);
    matched.textContent = '';
    searchBtn.textContent = 'Search';
  }
  function runSearch(src) {
    if (!src) { clearSearch(); return; }
    var re;
    try { re = new RegExp(src); } catch (err) {
      window.alert('Cannot search for "' + src + '": ' + err.message);
      return;
    }
    query = src;
    var hits = [];
    for (var i = 0; i < n; i++) {
      // "all" is not a function; matching it would always report 100%.
      if (D[i] > 0 && re.test(names[i])) { hits.push(i); rects[i].setAttribute('fill', HIGHLIGHT); }
      else rects[i].setAttribute('fill', fills[i]);
    }
    // A match nested inside another match (recursion, or a pattern hitting
    // caller and callee) must not be counted twice: sum the union of spans.
    hits.sort(function (a, b) { return X[a] - X[b] || D[a] - D[b]; });
    var covered = 0, end = -Infinity;
    for (var k = 0; k < hits.length; k++) {
      var s = X[hits[k]], e = s + N[hits[k]];
      if (s >= end) { covered += e - s; end = e; }
      else if (e > end) { covered += e - end; end = e; }
    }
    matched.textContent = 'Matched: ' + pct(covered) + ' (' + hits.length + ' frames)';
    searchBtn.textContent = 'Clear search';
    setDetails(hint);
  }
  function ask() {
    var s = window.prompt('Search frames (regular expression):', query);
    if (s !== null) runSearch(s);
  }
  searchBtn.addEventListener('click', function () {
    if (query) clearSearch(); else ask();
  });
  // For the HTML page's views (kViewsScript): its search box searches here
  // too, and the sandwich starts from the frame zoomed into.
  svg.emberSearch = function (src) { if (src) runSearch(src); else clearSearch(); };
  svg.emberZoomed = function () { return zoomed >= 0 ? names[zoomed] : ''; };
  window.addEventListener('keydown', function (e) {
    var k = e.key;
    if ((e.ctrlKey || e.metaKey) && !e.altKey && (k === 'f' || k === 'F')) { e.preventDefault(); ask(); }
    else if (k === '/' && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); ask(); }
    else if (k === 'Escape') { resetZoom(); clearSearch(); hideTip(); }
  });

  // The server-side labels assume a particular monospace advance; if the
  // font the browser picked differs, relabel so text neither overflows its
  // box nor gets cut needlessly short.
  var probe = document.createElementNS(NS, 'text');
  probe.textContent = 'MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM';
  framesG.appendChild(probe);
  var measured = 0;
  try { measured = probe.getComputedTextLength() / 40; } catch (e) {}
  framesG.removeChild(probe);
  if (measured > 0 && Math.abs(measured - cw) > 0.01) {
    cw = measured;
    resetZoom();
  }
})();
)JS";

// The HTML page's other views, over the stacks themselves (embedded as JSON
// in #ember-data, so nothing is lost to the flame graph's culling of thin
// boxes): a table of functions by self and total, sortable and searchable,
// and a sandwich: one function's callers above it and its callees below,
// merged over every stack it is in. The toolbar's search box filters the
// table and searches the flame graph. Static text, like kScript.
const char* const kViewsScript = R"JS(
(function () {
  'use strict';
  var dataEl = document.getElementById('ember-data');
  if (!dataEl) return;
  var data = JSON.parse(dataEl.textContent);
  var names = data.names, stacks = data.stacks, unit = data.unit || 'samples', nsPer = data.ns || 0;
  var NS = 'http://www.w3.org/2000/svg';
  var total = 0;
  for (var i = 0; i < stacks.length; i++) total += stacks[i][0];
  var svg = document.getElementById('ember-flamegraph');
  var views = { flame: document.getElementById('ember-view-flame'),
                table: document.getElementById('ember-view-table'),
                sandwich: document.getElementById('ember-view-sandwich') };
  var buttons = document.querySelectorAll('.ember-toolbar button[data-view]');
  var search = document.getElementById('ember-search');

  function pct(v, of) { return of > 0 ? (100 * v / of).toFixed(2) + '%' : '0.00%'; }
  function dur(ns) {
    if (ns < 1e3) return ns.toFixed(0) + ' ns';
    if (ns < 1e6) return (ns / 1e3).toFixed(2) + ' \u00b5s';
    if (ns < 1e9) return (ns / 1e6).toFixed(2) + ' ms';
    return (ns / 1e9).toFixed(2) + ' s';
  }
  function amount(v) { return v + ' ' + unit + (nsPer > 0 ? ' (' + dur(v * nsPer) + ')' : ''); }

  // Self: stacks ending in the function. Total: stacks containing it, once
  // each however deep it recurses.
  var self = new Float64Array(names.length), incl = new Float64Array(names.length),
      seen = new Int32Array(names.length);
  seen.fill(-1);
  for (var s = 0; s < stacks.length; s++) {
    var st = stacks[s], c = st[0];
    for (var k = 1; k < st.length; k++) {
      var f = st[k];
      if (seen[f] !== s) { seen[f] = s; incl[f] += c; }
    }
    if (st.length > 1) self[st[st.length - 1]] += c;
  }
  var fns = [];
  for (var f2 = 0; f2 < names.length; f2++) if (incl[f2] > 0) fns.push(f2);

  // ---- table ----
  var sortKey = 'self', sortDesc = true, filter = null, MAXROWS = 2000;
  function renderTable() {
    var rows = fns.filter(function (f) { return !filter || filter.test(names[f]); });
    rows.sort(function (a, b) {
      var d = sortKey === 'name' ? (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0)
            : sortKey === 'self' ? self[a] - self[b] : incl[a] - incl[b];
      if (!d) d = incl[a] - incl[b] || (names[a] < names[b] ? 1 : -1);
      return sortDesc ? -d : d;
    });
    var t = document.createElement('table');
    t.className = 'ember-table';
    var head = t.createTHead().insertRow();
    [['name', 'Function'], ['self', 'Self'], ['self', 'Self %'], ['total', 'Total'], ['total', 'Total %']]
      .forEach(function (h) {
        var th = document.createElement('th');
        th.textContent = h[1] + (sortKey === h[0] ? (sortDesc ? ' \u25bc' : ' \u25b2') : '');
        th.setAttribute('data-sort', h[0]);
        th.addEventListener('click', function () {
          if (sortKey === h[0]) sortDesc = !sortDesc; else { sortKey = h[0]; sortDesc = h[0] !== 'name'; }
          renderTable();
        });
        head.appendChild(th);
      });
    var body = t.createTBody();
    rows.slice(0, MAXROWS).forEach(function (f) {
      var r = body.insertRow();
      r.setAttribute('data-function', names[f]);
      r.title = names[f] + '\nself: ' + amount(self[f]) + ', ' + pct(self[f], total) +
                '\ntotal: ' + amount(incl[f]) + ', ' + pct(incl[f], total) + '\nclick: sandwich';
      [names[f], String(self[f]), pct(self[f], total), String(incl[f]), pct(incl[f], total)].forEach(function (v, i) {
        var td = r.insertCell();
        td.textContent = v;
        if (i > 0) td.className = 'num';
      });
      r.addEventListener('click', function () { showSandwich(f); });
    });
    var note = document.createElement('p');
    note.className = 'ember-note';
    note.textContent = rows.length + ' of ' + fns.length + ' functions' +
        (rows.length > MAXROWS ? ' (the first ' + MAXROWS + ' shown)' : '') + '; ' + amount(total) + ' in all. ' +
        'Click a column to sort, a row for its sandwich.';
    views.table.textContent = '';
    views.table.appendChild(note);
    views.table.appendChild(t);
  }

  // ---- sandwich ----
  function node(name) { return { name: name, v: 0, kids: {}, order: [] }; }
  function child(n, name) {
    var k = n.kids[name];
    if (!k) { k = n.kids[name] = node(name); n.order.push(k); }
    return k;
  }
  // Callers: each stack from the function's outermost call up to the root;
  // callees: from there down to the leaf. A stack counts once in each.
  // Each side keeps at most MAXDEPTH rows (drawing recurses once a row).
  var MAXDEPTH = 512;
  function build(f) {
    var up = node(f), down = node(f);
    for (var s = 0; s < stacks.length; s++) {
      var st = stacks[s], c = st[0], at = -1;
      for (var k = 1; k < st.length; k++) if (st[k] === f) { at = k; break; }
      if (at < 0) continue;
      var n = up;
      n.v += c;
      for (var j = at - 1; j >= 1 && at - j <= MAXDEPTH; j--) { n = child(n, st[j]); n.v += c; }
      n = down;
      n.v += c;
      for (var j2 = at + 1; j2 < st.length && j2 - at <= MAXDEPTH; j2++) { n = child(n, st[j2]); n.v += c; }
    }
    return { up: up, down: down };
  }
  function depthOf(n) {
    var d = 0;
    n.order.forEach(function (k) { d = Math.max(d, 1 + depthOf(k)); });
    return d;
  }
  function color(name, focus) {
    if (focus) return '#d946ef';
    var h = 2166136261;
    for (var i = 0; i < name.length; i++) { h ^= name.charCodeAt(i); h = Math.imul(h, 16777619) >>> 0; }
    return 'rgb(' + (205 + h % 51) + ',' + (60 + (h >>> 8) % 160) + ',' + (10 + (h >>> 16) % 55) + ')';
  }
  var FH = 16, W = 1180, PAD = 10, CW = 7.23;
  function clip(s, px) {
    var fit = Math.floor(px / CW);
    if (s.length <= fit) return s;
    return fit < 3 ? '' : s.slice(0, fit - 2) + '..';
  }
  // Lays out the tree from (x, row) with `dir` -1 (rows go up) or +1 (down).
  function draw(g, n, x, w, row, dir, rowY, scale, focusTotal, focus) {
    if (w < 0.5) return;
    var y = rowY(row);
    var box = document.createElementNS(NS, 'g');
    box.setAttribute('class', 'sw-frame');
    box.setAttribute('data-name', names[n.name]);
    box.setAttribute('data-side', dir < 0 ? 'callers' : 'callees');
    var title = document.createElementNS(NS, 'title');
    title.textContent = names[n.name] + '\n' + amount(n.v) + ', ' + pct(n.v, total) + ' of all, ' +
                        pct(n.v, focusTotal) + ' of ' + names[focus];
    box.appendChild(title);
    var r = document.createElementNS(NS, 'rect');
    r.setAttribute('x', x.toFixed(2)); r.setAttribute('y', y);
    r.setAttribute('width', w.toFixed(2)); r.setAttribute('height', FH - 1);
    r.setAttribute('rx', 2);
    r.setAttribute('fill', color(names[n.name], row === 0));
    box.appendChild(r);
    var label = clip(names[n.name], w - 6);
    if (label) {
      var t = document.createElementNS(NS, 'text');
      t.setAttribute('x', (x + 3).toFixed(2)); t.setAttribute('y', y + FH - 4);
      t.textContent = label;
      box.appendChild(t);
    }
    box.addEventListener('click', function () { showSandwich(n.name); });
    g.appendChild(box);
    var kids = n.order.slice().sort(function (a, b) { return names[a.name] < names[b.name] ? -1 : 1; });
    var cx = x;
    kids.forEach(function (k) {
      var kw = k.v * scale;
      draw(g, k, cx, kw, row + 1, dir, rowY, scale, focusTotal, focus);
      cx += kw;
    });
  }
  var current = -1;
  function showSandwich(f) {
    current = f;
    var t = build(f), du = depthOf(t.up), dd = depthOf(t.down);
    var top = 30, mid = top + du * FH;  // the function's own row
    var H = mid + (dd + 1) * FH + 20;
    var box = document.createElementNS(NS, 'svg');
    box.setAttribute('xmlns', NS);
    box.setAttribute('viewBox', '0 0 ' + (W + 2 * PAD) + ' ' + H);
    box.setAttribute('width', W + 2 * PAD);
    box.setAttribute('class', 'ember-sandwich');
    var head = document.createElementNS(NS, 'text');
    head.setAttribute('x', PAD); head.setAttribute('y', 18);
    head.setAttribute('class', 'sw-title');
    head.textContent = names[f] + ': ' + amount(t.up.v) + ', ' + pct(t.up.v, total) +
                       ' of all. Callers above, callees below; click a frame to center on it.';
    box.appendChild(head);
    var g = document.createElementNS(NS, 'g');
    box.appendChild(g);
    var scale = W / t.up.v;
    // The function's row is drawn once, by the callers' tree; the callees'
    // tree starts below it.
    draw(g, t.up, PAD, W, 0, -1, function (row) { return mid - row * FH; }, scale, t.up.v, f);
    var cx = PAD;
    t.down.order.slice().sort(function (a, b) { return names[a.name] < names[b.name] ? -1 : 1; })
      .forEach(function (k) {
        draw(g, k, cx, k.v * scale, 1, 1, function (row) { return mid + row * FH; }, scale, t.up.v, f);
        cx += k.v * scale;
      });
    views.sandwich.textContent = '';
    views.sandwich.appendChild(box);
    show('sandwich');
  }

  // ---- views ----
  function show(view) {
    for (var v in views) if (views[v]) views[v].hidden = v !== view;
    for (var b = 0; b < buttons.length; b++)
      buttons[b].classList.toggle('on', buttons[b].getAttribute('data-view') === view);
    if (view === 'table') renderTable();
    if (view === 'sandwich' && current < 0) {
      var z = svg && svg.emberZoomed ? svg.emberZoomed() : '', pick = -1;
      if (z) pick = names.indexOf(z);
      if (pick < 0) fns.forEach(function (f) { if (pick < 0 || self[f] > self[pick]) pick = f; });
      if (pick >= 0) showSandwich(pick);
    }
  }
  for (var b = 0; b < buttons.length; b++)
    buttons[b].addEventListener('click', function (e) { show(e.currentTarget.getAttribute('data-view')); });
  search.addEventListener('input', function () {
    var src = search.value;
    try { filter = src ? new RegExp(src) : null; search.classList.remove('bad'); }
    catch (err) { search.classList.add('bad'); return; }
    if (svg && svg.emberSearch) svg.emberSearch(src);
    if (!views.table.hidden) renderTable();
  });
})();
)JS";

void open_svg(std::string& out, double w, double h, const FlamegraphOptions& opts,
              uint64_t total, double avail, double base) {
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" id=\"ember-flamegraph\" width=\"";
  append_fixed(out, w, 0);
  out += "\" height=\"";
  append_fixed(out, h, 0);
  out += "\" viewBox=\"0 0 ";
  append_fixed(out, w, 0);
  out += ' ';
  append_fixed(out, h, 0);
  out += "\" data-total=\"";
  append_u64(out, total);
  out += "\" data-ns=\"";
  append_u64(out, opts.ns_per_count);
  out += "\" data-unit=\"";
  append_escaped(out, sanitize(opts.count_name));
  out += "\" data-pad=\"";
  append_fixed(out, kPadX, 0);
  out += "\" data-avail=\"";
  append_fixed(out, avail, 2);
  out += "\" data-base=\"";
  append_fixed(out, base, 0);
  out += "\" data-fh=\"";
  append_u64(out, kFrameH);
  out += "\" data-cw=\"";
  append_fixed(out, kCharW, 2);
  out += "\">\n<style><![CDATA[";
  out += kStyle;
  out += "]]></style>\n";
  out +=
      "<defs><linearGradient id=\"ember-bg\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
      "<stop offset=\"0\" stop-color=\"#f8f8f8\"/><stop offset=\"1\" stop-color=\"#f1ebdd\"/>"
      "</linearGradient></defs>\n";
  out += "<rect x=\"0\" y=\"0\" width=\"";
  append_fixed(out, w, 0);
  out += "\" height=\"";
  append_fixed(out, h, 0);
  out += "\" fill=\"url(#ember-bg)\"/>\n";

  out += "<text class=\"title\" x=\"";
  append_fixed(out, w / 2, 1);
  out += "\" y=\"24\" text-anchor=\"middle\">";
  append_escaped(out, sanitize(opts.title));
  out += "</text>\n";
  if (!opts.subtitle.empty()) {
    out += "<text class=\"subtitle\" x=\"";
    append_fixed(out, w / 2, 1);
    out += "\" y=\"42\" text-anchor=\"middle\">";
    append_escaped(out, sanitize(opts.subtitle));
    out += "</text>\n";
  }
}

std::string render_svg(const std::vector<FlameStack>& stacks, const FlamegraphOptions& opts,
                       bool xml_declaration) {
  const double width = std::clamp(opts.width, 200, 100000);
  const double avail = width - 2 * kPadX;
  const double top = opts.subtitle.empty() ? 40 : 56;

  std::string out;
  if (xml_declaration) out += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";

  const Interned in = intern(stacks, opts.base_total > 0);
  const uint64_t total = in.total;

  if (total == 0) {
    const double height = top + 80;
    open_svg(out, width, height, opts, 0, avail, top);
    out += "<text class=\"empty\" x=\"";
    append_fixed(out, width / 2, 1);
    out += "\" y=\"";
    append_fixed(out, top + 40, 0);
    out += "\" text-anchor=\"middle\">No ";
    append_escaped(out, sanitize(opts.count_name));
    out += " recorded: the profile is empty.</text>\n</svg>\n";
    return out;
  }

  const double px_per_count = avail / static_cast<double>(total);
  const double min_px = opts.min_frame_width_px > 0 ? opts.min_frame_width_px : 0;
  uint32_t max_depth = 0;
  const std::vector<Placed> placed = merge_and_layout(in, px_per_count, min_px, &max_depth);

  const double base = top + (max_depth + 1.0) * kFrameH;  // bottom edge of the "all" row
  const double height = base + 30;
  open_svg(out, width, height, opts, total, avail, base);

  out +=
      "<text class=\"btn reset hidden\" x=\"10\" y=\"24\">Reset zoom</text>\n"
      "<text class=\"btn search\" x=\"";
  append_fixed(out, width - kPadX, 0);
  out += "\" y=\"24\" text-anchor=\"end\">Search</text>\n";

  // Names are sanitised, escaped and coloured once per distinct name rather
  // than once per box.
  std::vector<std::string> clean(in.names.size());
  std::vector<std::string> escaped(in.names.size());
  std::vector<std::string> fill(in.names.size());
  std::vector<bool> prepared(in.names.size(), false);
  const std::string root_name = "all";
  const std::string root_fill = color_for(root_name);
  std::string unit_escaped;
  append_escaped(unit_escaped, sanitize(opts.count_name));

  // Differential: each box's change in share, in percentage points.
  const bool differential = opts.base_total > 0;
  auto change_of = [&](const Placed& p) {
    return 100.0 * (static_cast<double>(p.total) / static_cast<double>(total) -
                    static_cast<double>(p.base) / static_cast<double>(opts.base_total));
  };
  double max_change = 0;
  if (differential)
    for (const Placed& p : placed) max_change = std::max(max_change, std::fabs(change_of(p)));

  out.reserve(out.size() + placed.size() * 220);
  out += "<g class=\"frames\">\n";
  for (const Placed& p : placed) {
    const std::string* name = &root_name;
    const std::string* name_esc = &root_name;
    const std::string* color = &root_fill;
    if (p.name != kRoot) {
      const uint32_t id = p.name;
      if (!prepared[id]) {
        clean[id] = sanitize(in.names[id]);
        append_escaped(escaped[id], clean[id]);
        fill[id] = color_for(clean[id]);
        prepared[id] = true;
      }
      name = &clean[id];
      name_esc = &escaped[id];
      color = &fill[id];
    }
    std::string change_fill;
    if (differential) {
      change_fill = diff_color(change_of(p), max_change);
      color = &change_fill;
    }
    const double x = kPadX + static_cast<double>(p.x) * px_per_count;
    const double w = static_cast<double>(p.total) * px_per_count;
    const double y = base - (p.depth + 1.0) * kFrameH;

    out += "<g data-x=\"";
    append_u64(out, p.x);
    out += "\" data-n=\"";
    append_u64(out, p.total);
    if (p.self > 0) {
      out += "\" data-s=\"";
      append_u64(out, p.self);
    }
    out += "\"><title>";
    out += *name_esc;
    out += '\n';
    append_amount(out, p.total, total, unit_escaped, opts.ns_per_count);
    if (differential) {
      const double c = change_of(p);
      out += '\n';
      out += c >= 0 ? "+" : "-";
      append_fixed(out, std::fabs(c), 2);
      out += " points against the base (";
      append_fixed(out, 100.0 * static_cast<double>(p.base) / static_cast<double>(opts.base_total), 2);
      out += "% there)";
    }
    out += "</title><rect x=\"";
    append_fixed(out, x, 2);
    out += "\" y=\"";
    append_fixed(out, y, 0);
    out += "\" width=\"";
    append_fixed(out, w, 2);
    out += "\" height=\"";
    append_u64(out, kFrameH - 1);
    out += "\" fill=\"";
    out += *color;
    out += "\"/>";
    const std::string label = fit_label(*name, w);
    if (!label.empty()) {
      out += "<text x=\"";
      append_fixed(out, x + 3, 2);
      out += "\" y=\"";
      append_fixed(out, y + kFrameH - 4, 0);
      out += "\">";
      append_escaped(out, label);
      out += "</text>";
    }
    out += "</g>\n";
  }
  out += "</g>\n";

  out += "<text class=\"details\" x=\"10\" y=\"";
  append_fixed(out, base + 19, 0);
  out += "\">Click a frame to zoom, Ctrl-F or / to search, Esc to reset.</text>\n";
  out += "<text class=\"matched\" x=\"";
  append_fixed(out, width - kPadX, 0);
  out += "\" y=\"";
  append_fixed(out, base + 19, 0);
  out += "\" text-anchor=\"end\"></text>\n";
  // Last in document order so it paints above the frames.
  out +=
      "<g class=\"tip hidden\" pointer-events=\"none\"><rect x=\"0\" y=\"0\" width=\"0\" "
      "height=\"0\" rx=\"3\"/><text x=\"8\" y=\"17\"></text></g>\n";
  out += "<script type=\"text/ecmascript\"><![CDATA[";
  out += kScript;
  out += "]]></script>\n</svg>\n";
  return out;
}

// The stacks as JSON for kViewsScript: {"unit", "ns", "names": [...],
// "stacks": [[count, name index, ...], ...]} (root first). Inside a
// <script> element, so '<' is escaped and "</script>" cannot occur.
void append_views_data(std::string& out, const std::vector<FlameStack>& stacks, const FlamegraphOptions& opts) {
  auto json_string = [&](std::string_view raw) {
    const std::string clean = sanitize(raw);  // valid UTF-8, no control characters
    out += '"';
    for (char c : clean) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '<') {
        out += "\\u003c";
      } else {
        out += c;
      }
    }
    out += '"';
  };
  std::unordered_map<std::string_view, uint32_t> ids;
  std::vector<std::string_view> names;
  out += "<script type=\"application/json\" id=\"ember-data\">{\"unit\":";
  json_string(opts.count_name);
  out += ",\"ns\":";
  append_u64(out, opts.ns_per_count);
  std::string rows;
  for (const FlameStack& st : stacks) {
    if (st.count == 0) continue;
    rows += rows.empty() ? "[" : ",[";
    append_u64(rows, st.count);
    for (const std::string& f : st.frames) {
      auto [it, fresh] = ids.try_emplace(f, static_cast<uint32_t>(names.size()));
      if (fresh) names.push_back(f);
      rows += ',';
      append_u64(rows, it->second);
    }
    rows += ']';
  }
  out += ",\"names\":[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    json_string(names[i]);
  }
  out += "],\"stacks\":[";
  out += rows;
  out += "]}</script>\n";
}

}  // namespace

std::string render_flamegraph_svg(const std::vector<FlameStack>& stacks, const FlamegraphOptions& opts) {
  return render_svg(stacks, opts, /*xml_declaration=*/true);
}

std::string render_flamegraph_html(const std::vector<FlameStack>& stacks, const FlamegraphOptions& opts) {
  // Inline SVG in HTML is parsed as foreign content, where CDATA sections
  // (used for the style and script) are honoured, so the very same markup
  // works; only the XML declaration has to go.
  const std::string svg = render_svg(stacks, opts, /*xml_declaration=*/false);
  std::string out;
  out.reserve(svg.size() + 1024);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  append_escaped(out, sanitize(opts.title));
  out +=
      "</title>\n<style>\n"
      "html,body{margin:0;padding:0;background:#e9e9e9}\n"
      "body{padding:12px}\n"
      ".ember-flamegraph-wrap{margin:0 auto;max-width:";
  append_fixed(out, std::clamp(opts.width, 200, 100000), 0);
  out +=
      "px}\n"
      ".ember-flamegraph-wrap svg{display:block;width:100%;height:auto;"
      "box-shadow:0 1px 4px rgba(0,0,0,.2)}\n"
      ".ember-toolbar{display:flex;gap:6px;align-items:center;margin:0 0 8px;font:13px sans-serif}\n"
      ".ember-toolbar button{font:13px sans-serif;padding:4px 10px;border:1px solid #999;border-radius:4px;"
      "background:#f6f6f6;cursor:pointer}\n"
      ".ember-toolbar button.on{background:#1d4ed8;color:#fff;border-color:#1d4ed8}\n"
      ".ember-toolbar input{margin-left:auto;font:13px monospace;padding:4px 6px;width:320px}\n"
      ".ember-toolbar input.bad{outline:2px solid #dc2626}\n"
      ".ember-table{border-collapse:collapse;width:100%;background:#fff;font:12px Menlo,Consolas,"
      "\"DejaVu Sans Mono\",monospace}\n"
      ".ember-table th{position:sticky;top:0;background:#e5e7eb;cursor:pointer;text-align:left;padding:4px 8px}\n"
      ".ember-table td{padding:2px 8px;border-top:1px solid #eee;white-space:nowrap}\n"
      ".ember-table td.num{text-align:right}\n"
      ".ember-table tbody tr{cursor:pointer}\n"
      ".ember-table tbody tr:hover{background:#fef3c7}\n"
      ".ember-note{font:13px sans-serif;margin:4px 0 8px}\n"
      ".ember-sandwich{display:block;width:100%;height:auto;background:#fafafa;box-shadow:0 1px 4px rgba(0,0,0,.2)}\n"
      ".ember-sandwich text{font:12px Menlo,Consolas,\"DejaVu Sans Mono\",monospace;fill:#111;pointer-events:none}\n"
      ".ember-sandwich .sw-title{font:13px sans-serif}\n"
      ".ember-sandwich g.sw-frame{cursor:pointer}\n"
      ".ember-sandwich g.sw-frame:hover rect{stroke:#1a1a1a;stroke-width:0.8}\n"
      "</style>\n</head>\n<body>\n<div class=\"ember-flamegraph-wrap\">\n"
      "<div class=\"ember-toolbar\"><button data-view=\"flame\" class=\"on\">Flame graph</button>"
      "<button data-view=\"table\">Table</button><button data-view=\"sandwich\">Sandwich</button>"
      "<input id=\"ember-search\" type=\"search\" placeholder=\"Search functions (regular expression)\">"
      "</div>\n<div id=\"ember-view-flame\">\n";
  out += svg;
  out += "</div>\n<div id=\"ember-view-table\" hidden></div>\n<div id=\"ember-view-sandwich\" hidden></div>\n";
  append_views_data(out, stacks, opts);
  out += "<script>";
  out += kViewsScript;
  out += "</script>\n</div>\n</body>\n</html>\n";
  return out;
}

}  // namespace ember
