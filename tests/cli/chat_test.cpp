// `llama-cxx chat` with scripted input: one answer per line, clean exit at EOF.
#include <gtest/gtest.h>

#include "cli/commands.h"
#include "generate_cli_runner.h"

namespace lcx {
namespace {

size_t count_lines(const std::string& s) {
    size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

TEST(ChatCommand, AnswersEachLineAndExitsAtEof) {
    auto r = test::run_cli(cli::add_chat_command, {"chat", "--temp", "0", "-n", "12", "-t", "2"},
                           "Tell me a story\nAnd then?\n");
    ASSERT_EQ(r.error, "");
    // Single-line answers may still contain newlines; at least one line per turn.
    EXPECT_GE(count_lines(r.out), 2u);
    EXPECT_FALSE(r.out.empty());
}

TEST(ChatCommand, UnknownTemplateIsAnError) {
    auto r = test::run_cli(cli::add_chat_command, {"chat", "--chat-template", "vicuna"}, "");
    EXPECT_NE(r.error.find("vicuna"), std::string::npos) << r.error;
}

TEST(ChatCommand, ForcedTemplateRuns) {
    auto r = test::run_cli(
        cli::add_chat_command,
        {"chat", "--chat-template", "chatml", "--temp", "0", "-n", "4", "-t", "2"}, "Hi\n");
    EXPECT_EQ(r.error, "");
}

}  // namespace
}  // namespace lcx
