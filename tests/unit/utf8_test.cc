#include "common/utf8.h"

#include <gtest/gtest.h>

namespace ember {
namespace {

TEST(Utf8, DecodesStrictlyAndEncodesBack) {
  struct Case {
    std::string bytes;
    size_t len;
    uint32_t cp;
  };
  for (const Case& c : {Case{"A", 1, 0x41}, Case{"\xc3\xbc", 2, 0xfc}, Case{"\xe2\x82\xac", 3, 0x20ac},
                        Case{"\xf0\x9f\x94\xa5", 4, 0x1f525}}) {
    uint32_t cp = 0;
    EXPECT_EQ(utf8_decode(c.bytes, 0, &cp), c.len) << c.bytes;
    EXPECT_EQ(cp, c.cp);
    std::string back;
    utf8_append(&back, cp);
    EXPECT_EQ(back, c.bytes);
  }
  uint32_t cp;
  for (std::string bad : {"\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80",
                          "\xe2\x28\xa1"})
    EXPECT_EQ(utf8_decode(bad, 0, &cp), 0u) << ::testing::PrintToString(bad);
  EXPECT_EQ(utf8_decode("ab", 2, &cp), 0u);  // past the end
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(valid_utf8("ok \xc3\xbc"), "ok \xc3\xbc");
  EXPECT_EQ(valid_utf8("\xe2\x28\xa1"), "\xef\xbf\xbd(\xef\xbf\xbd");
  EXPECT_EQ(valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

}  // namespace
}  // namespace ember
