// Makes the CFI fuzz target's seeds (cfi_corpus/cfi-seed-*): for each fixture module given, its
// image with three code addresses in its chain function (the entry, inside the prologue, past
// it). Usage: memdx_cfi_seeds OUT_DIR MODULE...
#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "fuzz/cfi_fuzz_input.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR MODULE...\n", argv[0]);
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    void* module = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
    void* chain = module ? dlsym(module, "unwind_fixture_dso_chain") : nullptr;
    if (chain == nullptr) {
      std::fprintf(stderr, "%s: no unwind_fixture_dso_chain in it\n", argv[i]);
      return 1;
    }
    for (uintptr_t offset : {1, 8, 24}) {
      auto input = memdx::fuzz::cfi_input_of_loaded_object(reinterpret_cast<uintptr_t>(chain) + offset);
      if (!input) {
        std::fprintf(stderr, "%s: no .eh_frame_hdr\n", argv[i]);
        return 1;
      }
      std::string name = std::string(argv[1]) + "/cfi-seed-" + std::to_string(i - 1) + "-" + std::to_string(offset);
      std::vector<uint8_t> bytes = memdx::fuzz::encode_cfi_input(*input);
      std::ofstream(name, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      std::printf("%s: %zu bytes\n", name.c_str(), bytes.size());
    }
  }
  return 0;
}
