// Streaming text: incomplete UTF-8 and possible stop-string prefixes are held back.
#include "runtime/text_stream.h"

#include <gtest/gtest.h>

namespace lcx {
namespace {

TEST(TextStream, HoldsBackIncompleteUtf8) {
    TextStream s;
    // "é" is C3 A9; "€" is E2 82 AC.
    EXPECT_EQ(s.push("caf\xC3"), "caf");
    EXPECT_EQ(s.push("\xA9 \xE2\x82"), "\xC3\xA9 ");
    EXPECT_EQ(s.push("\xAC!"), "\xE2\x82\xAC!");
    EXPECT_EQ(s.flush(), "");
    EXPECT_EQ(s.text(), "caf\xC3\xA9 \xE2\x82\xAC!");
}

TEST(TextStream, IncompleteTail) {
    EXPECT_EQ(incomplete_utf8_tail("ab"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("a\xF0\x9F"), 2u);
    EXPECT_EQ(incomplete_utf8_tail("a\xF0\x9F\x98\x80"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\xE2"), 1u);
}

TEST(TextStream, StopStringAcrossPieces) {
    TextStream s({"User:"});
    EXPECT_EQ(s.push("Hello. "), "Hello. ");
    EXPECT_EQ(s.push("Us"), "");  // might become the stop string
    EXPECT_FALSE(s.stopped());
    EXPECT_EQ(s.push("er: more"), "");
    EXPECT_TRUE(s.stopped());
    EXPECT_EQ(s.text(), "Hello. ");
    EXPECT_EQ(s.push("ignored"), "");
}

TEST(TextStream, FalseAlarmIsReleased) {
    TextStream s({"User:"});
    EXPECT_EQ(s.push("a U"), "a ");
    EXPECT_EQ(s.push("nder"), "Under");
    EXPECT_EQ(s.flush(), "");
    EXPECT_FALSE(s.stopped());
}

TEST(TextStream, StopInsideOnePieceKeepsTextBefore) {
    TextStream s({"\n\n"});
    EXPECT_EQ(s.push("one.\n\ntwo"), "one.");
    EXPECT_TRUE(s.stopped());
}

}  // namespace
}  // namespace lcx
