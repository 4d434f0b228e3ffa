// Runs a fuzz target's LLVMFuzzerTestOneInput once over given inputs,
// without libFuzzer: how every build replays the inputs that once failed
// (tests/fuzz/regressions, stored as hex text since binaries are not
// committed) and the seed corpora, as ctest's fuzz_replay.* tests.
//
//   <target>_replay PATH...   (files, .hex files, or directories of them)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool hex_decode(const std::string& text, std::vector<uint8_t>* out) {
  std::string digits;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) digits += c;
  if (digits.size() % 2) return false;
  for (size_t i = 0; i < digits.size(); i += 2) {
    unsigned v = 0;
    if (std::sscanf(digits.c_str() + i, "%2x", &v) != 1) return false;
    out->push_back(uint8_t(v));
  }
  return true;
}

bool replay(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string bytes = ss.str();
  std::vector<uint8_t> data;
  if (p.extension() == ".hex") {
    if (!hex_decode(bytes, &data)) {
      std::fprintf(stderr, "replay: %s: not hex\n", p.c_str());
      return false;
    }
  } else {
    data.assign(bytes.begin(), bytes.end());
  }
  LLVMFuzzerTestOneInput(data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (!e.is_regular_file() || e.path().filename() == "stamp") continue;
        ok &= replay(e.path());
        ++n;
      }
    } else if (std::filesystem::exists(p)) {
      ok &= replay(p);
      ++n;
    }
  }
  std::printf("replay: %zu inputs ran\n", n);
  return ok ? 0 : 1;
}
