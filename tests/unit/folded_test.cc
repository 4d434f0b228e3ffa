#include "agent/export/folded.h"

#include <gtest/gtest.h>

#include "profile_builders.h"

namespace ember {
namespace {

using namespace ember::testing;

TEST(Folded, RootFirstWithKernelSuffixAndInlinesExpanded) {
  auto exe = make_mapping("/app", 0, 1 << 20);
  auto k = make_mapping("[kernel.kallsyms]", 0, ~0ull);
  auto leaf = make_location(0x10, exe, {"leaf"});
  auto mid = make_location(0x20, exe, {"inlined_helper", "caller"});
  auto main_ = make_location(0x30, exe, {"main"});
  auto kfn = make_location(0xffff0000, k, {"clear_page_erms"}, origin::kKernel);
  Profile p;
  p.samples.push_back(ProfileSample{{leaf, mid, main_}, 6, 1, "app"});
  p.samples.push_back(ProfileSample{{kfn, leaf, mid, main_}, 2, 1, "app"});
  p.samples.push_back(ProfileSample{{leaf, mid, main_}, 1, 2, "app"});  // another pid, same stack
  std::string text = render_folded(fold_profile(p));
  EXPECT_EQ(text,
            "app;main;caller;inlined_helper;leaf 7\n"
            "app;main;caller;inlined_helper;leaf;clear_page_erms_[k] 2\n");
}

TEST(Folded, MeasuredEventsPrintMicroseconds) {
  auto exe = make_mapping("/app", 0, 1 << 20);
  auto wait = make_location(0x10, exe, {"wait"});
  Profile p;
  p.event = EventKind::kOffCpu;
  p.samples.push_back(ProfileSample{{wait}, 2, 1, "app", 1'499'700});
  p.samples.push_back(ProfileSample{{wait}, 1, 2, "app", 300});  // merged before rounding
  EXPECT_EQ(render_folded(fold_profile(p)), "app;wait 1500\n");
}

TEST(Folded, WithoutProcessRootAndWithUnsafeNames) {
  auto exe = make_mapping("/app", 0, 1 << 20);
  auto a = make_location(0x10, exe, {"operator()(int; int)"});
  auto b = make_location(0x20, exe, {"std::vector<int, std::allocator<int> >::push_back"});
  Profile p;
  p.samples.push_back(ProfileSample{{a, b}, 3, 1, "x"});
  FoldedOptions o;
  o.process_root = false;
  EXPECT_EQ(render_folded(fold_profile(p, o)),
            "std::vector<int, std::allocator<int> >::push_back;operator()(int: int) 3\n");
}

TEST(Folded, UnresolvedFramesKeepTheirPlaceholder) {
  auto l = std::make_shared<Location>();
  l->lines.push_back(Line{"libc.so.6+0x2724a", "", "", 0, 0});
  auto u = std::make_shared<Location>();
  u->origin = origin::kKernel;
  u->lines.push_back(Line{"[unknown]", "", "", 0, 0});
  Profile p;
  p.samples.push_back(ProfileSample{{u, l}, 1, 1, "t"});
  EXPECT_EQ(render_folded(fold_profile(p)), "t;libc.so.6+0x2724a;[unknown]_[k] 1\n");
}

}  // namespace
}  // namespace ember
