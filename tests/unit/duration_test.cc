#include "common/duration.h"

#include <gtest/gtest.h>

namespace ember {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(Duration, ParsesUnitsUsersWrite) {
  EXPECT_EQ(*parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(*parse_duration("20s"), seconds(20));
  EXPECT_EQ(*parse_duration("1m"), minutes(1));
  EXPECT_EQ(*parse_duration("1h30m"), minutes(90));
  EXPECT_EQ(*parse_duration("2.5s"), milliseconds(2500));
  EXPECT_EQ(*parse_duration("250us"), std::chrono::microseconds(250));
  EXPECT_EQ(*parse_duration("7ns"), std::chrono::nanoseconds(7));
}

TEST(Duration, RejectsAmbiguousOrMalformedInput) {
  EXPECT_FALSE(parse_duration("10").ok());  // no unit
  EXPECT_FALSE(parse_duration("").ok());
  EXPECT_FALSE(parse_duration("s").ok());
  EXPECT_FALSE(parse_duration("10x").ok());
  EXPECT_FALSE(parse_duration("-5s").ok());
  EXPECT_NE(parse_duration("10").error().message.find("missing unit"), std::string::npos);
}

TEST(Duration, FormatsTheShortestExactForm) {
  EXPECT_EQ(format_duration(seconds(90)), "1m30s");
  EXPECT_EQ(format_duration(milliseconds(500)), "500ms");
  EXPECT_EQ(format_duration(seconds(10)), "10s");
  EXPECT_EQ(format_duration(std::chrono::hours(2)), "2h");
  EXPECT_EQ(format_duration(std::chrono::nanoseconds(0)), "0s");
}

}  // namespace
}  // namespace ember
