// ELF symbolization against binaries built in this build: PIE, non-PIE and a
// shared library, resolved through a live process's /proc/PID/maps (the load
// bias must be right for each), plus the exec-hint path used when a process
// is already gone.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "fixture_process.h"
#include "symbolizer/demangle.h"
#include "symbolizer/binary.h"
#include "symbolizer/symbolizer.h"

namespace ember {
namespace {

using testing::FixtureProcess;

std::string fixture(const char* name) { return std::string(FIXTURE_DIR) + "/" + name; }

void expect_all_resolve(const char* binary) {
  FixtureProcess p(fixture(binary));
  ASSERT_TRUE(p.ready()) << binary;
  ASSERT_EQ(p.addresses().size(), 5u);
  auto snap = read_process_snapshot("/proc", p.pid());
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  Symbolizer sym(SymbolizerOptions{});
  for (const auto& [name, addr] : p.addresses()) {
    UserSymbol us = sym.resolve_user(**snap, addr, /*return_address=*/true);
    EXPECT_EQ(us.function, name) << binary << " at 0x" << std::hex << addr;
    EXPECT_NE(us.binary, nullptr);
    EXPECT_FALSE(us.binary->build_id().empty()) << us.module;
    if (name.rfind("fixture_lib", 0) == 0)
      EXPECT_NE(us.module.find("libfixture.so"), std::string::npos);
    else
      EXPECT_NE(us.module.find(binary), std::string::npos);
  }
}

TEST(ElfSymbolizer, PieExecutableAndSharedLibrary) { expect_all_resolve("symbols_pie"); }

TEST(ElfSymbolizer, NonPieExecutable) { expect_all_resolve("symbols_nopie"); }

TEST(ElfSymbolizer, ReturnAddressesLookUpTheCall) {
  // A return address that is exactly the start of the next function belongs
  // to the call before it.
  auto elf = ElfFile::open(fixture("symbols_nopie"));
  ASSERT_TRUE(elf.ok());
  auto bin = Binary::load(**elf);
  ASSERT_TRUE(bin.ok());
  const auto& syms = (*bin)->symbols();
  ASSERT_GT(syms.size(), 2u);
  // Find two adjacent symbols where the first ends exactly where the second begins.
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    if (syms[i].start + syms[i].size != syms[i + 1].start) continue;
    EXPECT_EQ((*bin)->lookup(syms[i + 1].start), &syms[i + 1]);
    EXPECT_EQ((*bin)->lookup(syms[i + 1].start - 1), &syms[i]);
    return;
  }
  GTEST_SKIP() << "no adjacent symbols";
}

TEST(ElfSymbolizer, LoadSegmentsMapFileOffsetsToAddresses) {
  auto elf = ElfFile::open(fixture("symbols_pie"));
  ASSERT_TRUE(elf.ok());
  auto bin = Binary::load(**elf);
  ASSERT_TRUE(bin.ok());
  EXPECT_TRUE((*bin)->is_shared_object());  // PIE is ET_DYN
  bool found_exec = false;
  for (const auto& seg : (*bin)->segments()) {
    if (!seg.executable) continue;
    found_exec = true;
    auto v = (*bin)->file_offset_to_vaddr(seg.offset + 0x10);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, seg.vaddr + 0x10);
  }
  EXPECT_TRUE(found_exec);
  EXPECT_FALSE((*bin)->file_offset_to_vaddr(1ull << 40).has_value());
}

TEST(ElfSymbolizer, DemanglesCxxNames) {
  auto elf = ElfFile::open(fixture("cxx_names"));
  ASSERT_TRUE(elf.ok());
  auto bin = Binary::load(**elf);
  ASSERT_TRUE(bin.ok());
  bool twice = false, ov_int = false, ov_double = false;
  for (const auto& s : (*bin)->symbols()) {
    std::string d = demangle((*bin)->name_of(s));
    if (d.find("ember_fixture::Box<") != std::string::npos && d.find("::twice(") != std::string::npos)
      twice = true;
    if (d == "ember_fixture::overloaded(int)") ov_int = true;
    if (d == "ember_fixture::overloaded(double)") ov_double = true;
  }
  EXPECT_TRUE(twice);
  EXPECT_TRUE(ov_int);
  EXPECT_TRUE(ov_double);
  EXPECT_EQ(demangle("main"), "main");
  EXPECT_EQ(demangle("_ZN3foo3barEv"), "foo::bar()");
  EXPECT_EQ(demangle("_Znotmangled"), "_Znotmangled");
}

TEST(ElfSymbolizer, NotAnElfIsAnError) {
  EXPECT_FALSE(ElfFile::open("/proc/self/status").ok());
  EXPECT_FALSE(ElfFile::open("/nonexistent").ok());
}

// Reads AT_ENTRY from /proc/PID/auxv and start/end of code from
// /proc/PID/stat: exactly what the BPF exec tracepoint reports.
ExecHint hint_of(pid_t pid, const std::string& exe) {
  ExecHint h;
  std::ifstream auxv("/proc/" + std::to_string(pid) + "/auxv", std::ios::binary);
  uint64_t kv[2];
  while (auxv.read(reinterpret_cast<char*>(kv), sizeof(kv))) {
    if (kv[0] == 9) h.entry = kv[1];  // AT_ENTRY
    if (kv[0] == 0) break;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  // Fields after "comm": state is field 3; startcode and endcode are 26, 27.
  for (int i = 3; i <= 27 && rest >> field; ++i) {
    if (i == 26) h.start_code = std::stoull(field);
    if (i == 27) h.end_code = std::stoull(field);
  }
  struct stat st{};
  ::stat(exe.c_str(), &st);
  h.dev = st.st_dev;
  h.inode = st.st_ino;
  return h;
}

TEST(ElfSymbolizer, ExecHintPlacesFramesOfAGoneProcess) {
  FixtureProcess p(fixture("symbols_pie"));
  ASSERT_TRUE(p.ready());
  // A snapshot as the process table builds it when /proc/PID/maps is gone:
  // no mappings, but the exec event's hint and an fd to the executable.
  ProcessSnapshot snap;
  snap.pid = p.pid();
  snap.proc_root = "/proc";
  snap.maps_ok = false;
  snap.exec_hint = hint_of(p.pid(), fixture("symbols_pie"));
  ASSERT_NE(snap.exec_hint->entry, 0u);
  ASSERT_LT(snap.exec_hint->start_code, snap.exec_hint->end_code);
  snap.exe_fd = std::make_shared<PinnedFile>(
      UniqueFd(::open(fixture("symbols_pie").c_str(), O_RDONLY | O_CLOEXEC)), nullptr,
      kPinSymbolizer);
  Symbolizer sym(SymbolizerOptions{});
  for (const char* name : {"fixture_exe_alpha", "fixture_exe_beta", "fixture_exe_static"}) {
    UserSymbol us = sym.resolve_user(snap, p.addresses().at(name), true);
    EXPECT_TRUE(us.via_exec_hint);
    EXPECT_EQ(us.function, name);
  }
  // Library frames cannot be placed without maps: unresolved, not wrong.
  UserSymbol lib = sym.resolve_user(snap, p.addresses().at("fixture_lib_function"), true);
  EXPECT_EQ(lib.function, "");
}

TEST(ElfSymbolizer, VdsoIsSymbolized) {
  auto snap = read_process_snapshot("/proc", getpid());
  ASSERT_TRUE(snap.ok());
  const MapEntry* vdso = nullptr;
  for (const auto& m : (*snap)->mappings)
    if (m.path == "[vdso]") vdso = &m;
  if (!vdso) GTEST_SKIP() << "no vDSO mapped";
  Symbolizer sym(SymbolizerOptions{});
  // Any address in the vDSO's text resolves to some __vdso_ or clock function.
  bool named = false;
  for (uint64_t a = vdso->start; a < vdso->end && !named; a += 16) {
    UserSymbol us = sym.resolve_user(**snap, a, false);
    if (!us.function.empty()) named = true;
  }
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// PLT stubs named `function@plt`, judged by objdump: every stub objdump names
// (other than its `*ABS*+0x...` names for IFUNC slots and the resolver
// entry) must get the same name, at every byte of the stub.
size_t expect_plt_names_match_objdump(const std::string& path) {
  auto elf = ElfFile::open(path);
  EXPECT_TRUE(elf.ok()) << path;
  if (!elf.ok()) return 0;
  auto bin = Binary::load(**elf);
  EXPECT_TRUE(bin.ok());
  if (!bin.ok()) return 0;
  FILE* p = popen(("objdump -d -j .plt -j .plt.sec -j .plt.got " + path + " 2>/dev/null").c_str(), "r");
  EXPECT_NE(p, nullptr);
  if (!p) return 0;
  char line[4096];
  size_t checked = 0;
  while (std::fgets(line, sizeof(line), p)) {
    unsigned long long addr = 0;
    char name[2048];
    if (std::sscanf(line, "%llx <%2047[^>]>:", &addr, name) != 2) continue;
    std::string n(name);
    if (n.size() < 5 || n.compare(n.size() - 4, 4, "@plt") != 0 || n.rfind("*ABS*", 0) == 0) continue;
    for (uint64_t off : {0ull, 4ull, 7ull}) {  // .plt.got entries are 8 bytes
      const Symbol* s = (*bin)->lookup(addr + off);
      EXPECT_NE(s, nullptr) << n << " +" << off;
      if (s) {
        EXPECT_EQ((*bin)->name_of(*s), n) << "at 0x" << std::hex << addr + off;
      }
    }
    ++checked;
  }
  pclose(p);
  return checked;
}

TEST(ElfSymbolizer, PltStubsAreNamedAsObjdumpNamesThem) {
  EXPECT_GT(expect_plt_names_match_objdump(fixture("symbols_pie")), 2u);
  EXPECT_GT(expect_plt_names_match_objdump("/lib/x86_64-linux-gnu/libc.so.6"), 10u);
  EXPECT_GT(expect_plt_names_match_objdump("/lib/x86_64-linux-gnu/libstdc++.so.6"), 100u);
}

TEST(ElfSymbolizer, IfuncAndResolverPltEntriesAreNamedToo) {
  auto elf = ElfFile::open("/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(elf.ok());
  auto bin = Binary::load(**elf);
  ASSERT_TRUE(bin.ok());
  std::string_view plt;
  ASSERT_TRUE((*elf)->section(".plt", &plt));
  // libc's .plt: the resolver entry, then IFUNC slots (memcpy and friends).
  uint64_t plt_addr = 0;
  for (const Symbol& s : (*bin)->symbols())
    if ((*bin)->name_of(s) == "_dl_runtime_resolve@plt") plt_addr = s.start;
  ASSERT_NE(plt_addr, 0u);
  size_t named = 0;
  for (uint64_t a = plt_addr + 16; a < plt_addr + plt.size(); a += 16) {
    const Symbol* s = (*bin)->lookup(a);
    if (s && (*bin)->name_of(*s).find("@plt") != std::string_view::npos) ++named;
  }
  EXPECT_EQ(named, plt.size() / 16 - 1);
}

}  // namespace
}  // namespace ember
