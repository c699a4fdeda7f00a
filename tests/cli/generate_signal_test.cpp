// `llama-cxx generate` as a process: Ctrl-C (SIGINT) stops the generation cleanly with the
// summary and exit status 130, and the prompt progress line stays off a stderr that is
// not a terminal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Child {
    pid_t pid = -1;
    int out = -1;  // read end of its stdout
};

// Starts the binary with `args`, stdout to a pipe, stderr to `err_path`.
Child spawn(const std::vector<std::string>& args, const std::string& err_path) {
    int fds[2];
    if (pipe(fds) != 0) return {};
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(err, STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(LCX_BINARY));
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(LCX_BINARY, argv.data());
        _exit(127);
    }
    close(fds[1]);
    return {pid, fds[0]};
}

std::string read_some(int fd, size_t at_least) {
    std::string s;
    char buf[256];
    while (s.size() < at_least) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        s.append(buf, size_t(n));
    }
    return s;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int wait_exit(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

std::string temp_path(const char* name) {
    return (std::filesystem::temp_directory_path() /
            (std::string(name) + "." + std::to_string(getpid())))
        .string();
}

TEST(GenerateProcess, CtrlCStopsCleanlyWithExit130) {
    const std::string err = temp_path("lcx-generate-sigint.err");
    // With seed 1 the bundled model writes 4000 tokens without an end-of-text token, so it
    // is still generating when the signal comes after its first few hundred bytes.
    Child c = spawn({"generate", "-s", "1", "-t", "1", "-c", "8192", "-n", "4000"}, err);
    ASSERT_GT(c.pid, 0);
    const std::string head = read_some(c.out, 300);
    ASSERT_GE(head.size(), 300u) << head;
    ASSERT_EQ(kill(c.pid, SIGINT), 0);
    const std::string tail = read_some(c.out, size_t(-1));  // to EOF: the process ends
    close(c.out);
    EXPECT_EQ(wait_exit(c.pid), 130);
    const std::string log = slurp(err);
    EXPECT_NE(log.find("stop: interrupted"), std::string::npos) << log;
    EXPECT_NE(log.find("generation: "), std::string::npos) << log;
    // The text so far is ended with a newline, like any other ending.
    const std::string all = head + tail;
    EXPECT_EQ(all.back(), '\n');
    EXPECT_EQ(all.rfind("Once upon a time", 0), 0u);
    std::filesystem::remove(err);
}

TEST(GenerateProcess, NoProgressLineWhenStderrIsNotATerminal) {
    const std::string err = temp_path("lcx-generate-progress.err");
    std::string prompt;
    for (int i = 0; i < 12; ++i) prompt += "Once upon a time, there was a little girl. ";
    // Batches of 8 tokens: the prompt is read in many passes.
    Child c =
        spawn({"generate", "-p", prompt, "-b", "8", "-n", "4", "-t", "1", "--temp", "0"}, err);
    ASSERT_GT(c.pid, 0);
    const std::string out = read_some(c.out, size_t(-1));
    close(c.out);
    EXPECT_EQ(wait_exit(c.pid), 0);
    EXPECT_EQ(out.rfind(prompt, 0), 0u) << out;  // the prompt is still echoed
    const std::string log = slurp(err);
    EXPECT_EQ(log.find("reading the prompt"), std::string::npos) << log;
    EXPECT_EQ(log.find('\r'), std::string::npos) << log;
    EXPECT_NE(log.find("stop: token limit"), std::string::npos) << log;
    std::filesystem::remove(err);
}

}  // namespace
