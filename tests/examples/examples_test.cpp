// The examples run as a user runs them: the model server's story checked step by step against
// what it printed (memdx.example.model_server/1) and what the kernel says of its memory.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "pressure/test_cgroup.h"

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

struct Ran {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `command` through the shell, stdout and stderr apart.
Ran run(const std::string& command) {
  char err_path[] = "/tmp/memdx-example-XXXXXX";
  int err_fd = ::mkstemp(err_path);
  EXPECT_GE(err_fd, 0);
  ::close(err_fd);
  Ran ran;
  FILE* pipe = ::popen((command + " 2>" + err_path).c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::array<char, 4096> buffer{};
  size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) ran.out.append(buffer.data(), got);
  int status = ::pclose(pipe);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (FILE* err = std::fopen(err_path, "r")) {
    while ((got = std::fread(buffer.data(), 1, buffer.size(), err)) > 0) ran.err.append(buffer.data(), got);
    std::fclose(err);
  }
  ::unlink(err_path);
  return ran;
}

// The server listens to the kernel's memory pressure, as a user's does. It runs in a cgroup of its
// own, as a service does, so that the pressure it hears is its own (none: the story's one critical
// moment is the one it makes), not that of tests beside it which fill cgroups on purpose.
TEST(ModelServer, KeepsItsMemoryBoundedThroughTheWholeStory) {
  const int requests = 120;
  const uint64_t model_bytes = 128 * kMiB;
  memdx_test::TestCgroup cgroup(4096 * kMiB);  // room for the story many times over
  std::string enter;
  for (const std::string& dir : {cgroup.v1_dir(), cgroup.v2_dir()}) {
    if (!dir.empty()) enter += "echo $$ > " + dir + "/cgroup.procs && ";
  }
  Ran ran = run(enter + "exec " + MEMDX_EXAMPLE_MODEL_SERVER + " --model-mib 128 --requests 120 --idle-ms 300" +
                " --cancel-request 5 --pressure");
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  nlohmann::json out = nlohmann::json::parse(ran.out);
  EXPECT_EQ(out["schema"], "memdx.example.model_server/1");
  if (!cgroup.v2_dir().empty()) {
    EXPECT_EQ(out["pressure_source"], "cgroup psi");
  }
  EXPECT_GT(out["preflight_usable_bytes"].get<uint64_t>(), model_bytes);

  // Loaded for the first request, then again after the idle unload, for the pressure step.
  EXPECT_EQ(out["loads"], 2);
  EXPECT_EQ(out["idle_unloads"], 1);
  EXPECT_EQ(out["pressure_unloads"], 1);
  EXPECT_NE(ran.err.find("governor: unloaded model (128 MiB, priority 0) after 300 ms unused"), std::string::npos)
      << ran.err;
  EXPECT_NE(ran.err.find("for critical pressure"), std::string::npos) << ran.err;
  // The idle unload gave the model's memory back to the kernel.
  EXPECT_LT(out["rss_idle_bytes"].get<uint64_t>() + model_bytes * 9 / 10, out["rss_loaded_bytes"].get<uint64_t>());

  // The cancelled generation freed its KV cache (256 KiB a token, at least 16 tokens in).
  EXPECT_EQ(out["cancelled"], 1);
  EXPECT_LT(out["rss_after_cancel_bytes"].get<uint64_t>() + 3 * kMiB, out["rss_before_cancel_bytes"].get<uint64_t>());

  // Backpressure: the token buffer never held more than its 8, however slow the reader.
  EXPECT_LE(out["channel_high_water"].get<uint64_t>(), 8u);
  EXPECT_GT(out["tokens_shown"].get<uint64_t>(), uint64_t{(requests - 1) * 32});
  EXPECT_LT(out["tokens_shown"].get<uint64_t>(), uint64_t{requests * 32});

  // The last 100 generations, oldest first.
  const nlohmann::json& records = out["history"]["records"];
  ASSERT_EQ(records.size(), 100u);
  EXPECT_EQ(records.front()["values"]["request"], requests - 100);
  EXPECT_EQ(records.back()["values"]["request"], requests - 1);
  EXPECT_GT(records.back()["values"]["tokens_per_s"].get<double>(), 0);
  EXPECT_GE(records.back()["values"]["peak_rss_bytes"].get<double>(), static_cast<double>(model_bytes));
}

TEST(ModelServer, SaysWhatIsShortWhenTheModelCannotFit) {
  Ran ran = run(std::string(MEMDX_EXAMPLE_MODEL_SERVER) + " --model-mib 100000000");  // 95 TiB
  EXPECT_EQ(ran.exit_code, 3);
  EXPECT_TRUE(ran.out.empty());
  EXPECT_EQ(ran.err.rfind("model_server: ", 0), 0u) << ran.err;
  EXPECT_NE(ran.err.find("TiB"), std::string::npos) << ran.err;  // how much is needed, in binary units
  EXPECT_EQ(ran.err.find('\n'), ran.err.size() - 1) << "one line: " << ran.err;
}

}  // namespace
