// Stripped binaries: symbols and DWARF found only where distributions put
// them (a build-id path, .gnu_debuglink next to the binary, in .debug/ or
// under the debug directory, MiniDebugInfo), also inside a container's root.
// The fixtures come from tests/fixtures/split_debug.sh: stripped copies of
// inline_heavy_cxx. A stripped copy with its debug file must describe every
// address exactly as the unstripped original does.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/unique_fd.h"
#include "symbolizer/binary_cache.h"
#include "symbolizer/debug_file.h"
#include "symbolizer/debuginfod.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/binary.h"
#include "symbolizer/process_maps.h"
#include "symbolizer/symbolizer.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) { return std::string(FIXTURE_DIR) + "/" + name; }
std::string split(const std::string& name) { return fixture("split/" + name); }

std::shared_ptr<Binary> load(const std::string& path, Binary::LoadOptions opts) {
  auto elf = ElfFile::open(path);
  EXPECT_TRUE(elf.ok()) << path;
  if (!elf.ok()) return nullptr;
  auto bin = Binary::load(std::move(*elf), opts);
  EXPECT_TRUE(bin.ok()) << path;
  return bin.ok() ? *bin : nullptr;
}

Binary::LoadOptions with_dwarf() {
  Binary::LoadOptions o;
  o.dwarf = true;
  o.debug.debug_dirs = {"/nonexistent-debug-dir"};  // only what each test points at
  return o;
}

std::string render(const std::vector<SourceFrame>& frames) {
  std::string s;
  for (const auto& f : frames)
    s += f.function + " @" + f.file + ":" + std::to_string(f.line) + (f.inlined ? " (inline)" : "") + "; ";
  return s;
}

// Every function of the original, and a spread of addresses inside each:
// the stripped copy must give the same frames. Returns addresses compared.
size_t expect_same_as_original(const Binary& stripped) {
  auto original = load(fixture("inline_heavy_cxx"), with_dwarf());
  if (!original) return 0;
  size_t compared = 0, with_inlines = 0;
  std::vector<SourceFrame> want, got;
  for (const Symbol& s : original->symbols()) {
    for (uint64_t a = s.start; a < s.start + s.size; a += 5) {
      original->describe(a, true, true, &want);
      stripped.describe(a, true, true, &got);
      EXPECT_EQ(render(got), render(want)) << "at 0x" << std::hex << a;
      ++compared;
      if (want.size() > 1) ++with_inlines;
    }
  }
  EXPECT_GT(with_inlines, 100u) << "the fixture should exercise inlined frames";
  return compared;
}

TEST(DebugFiles, StrippedCopyReallyHasNothing) {
  auto bin = load(split("buildid/bin"), with_dwarf());
  ASSERT_TRUE(bin);
  EXPECT_FALSE(bin->has_dwarf());
  EXPECT_EQ(bin->symbol_source(), ".dynsym");
  std::vector<SourceFrame> frames;
  auto original = load(fixture("inline_heavy_cxx"), with_dwarf());
  ASSERT_TRUE(original);
  size_t named = 0;
  for (const Symbol& s : original->symbols()) {
    bin->describe(s.start, true, true, &frames);
    if (!frames.empty() && frames.back().function == "main") ++named;
  }
  EXPECT_EQ(named, 0u) << "main must not be nameable without the debug file";
}

TEST(DebugFiles, ByBuildIdUnderTheRoot) {
  Binary::LoadOptions o = with_dwarf();
  o.debug.root = split("buildid/root");  // as /proc/PID/root for a container
  o.debug.debug_dirs = {"/usr/lib/debug"};
  auto bin = load(split("buildid/bin"), o);
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->symbol_source(), "debugfile:.symtab");
  EXPECT_NE(bin->dwarf_source().find("/usr/lib/debug/.build-id/"), std::string::npos)
      << bin->dwarf_source();
  EXPECT_GT(expect_same_as_original(*bin), 1000u);
}

TEST(DebugFiles, ByDebuglinkInDotDebug) {
  auto bin = load(split("link/bin"), with_dwarf());
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->symbol_source(), "debugfile:.symtab");
  EXPECT_NE(bin->dwarf_source().find("/link/.debug/bin.debug"), std::string::npos)
      << bin->dwarf_source();
  EXPECT_GT(expect_same_as_original(*bin), 1000u);
}

TEST(DebugFiles, ByDebuglinkUnderDebugDir) {
  Binary::LoadOptions o = with_dwarf();
  o.debug.debug_dirs = {"/nonexistent-debug-dir", split("linkdir/debug")};  // the second of two
  auto bin = load(split("linkdir/bin"), o);
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->symbol_source(), "debugfile:.symtab");
  EXPECT_NE(bin->dwarf_source().find("/linkdir/debug/"), std::string::npos) << bin->dwarf_source();
  EXPECT_GT(expect_same_as_original(*bin), 1000u);
}

// .gnu_debuglink holds a file name; one that is a path ("../bin.debug", from
// a workload) is not followed, even to a debug file whose CRC matches.
TEST(DebugFiles, DebuglinkThatIsAPathIsNotFollowed) {
  auto elf = ElfFile::open(split("escape/sub/bin"));
  ASSERT_TRUE(elf.ok());
  std::string_view raw;
  ASSERT_TRUE((*elf)->section(".gnu_debuglink", &raw));
  ASSERT_EQ(raw.size(), 20u);
  EXPECT_EQ(std::string(raw.substr(0, 12)), "../bin.debug");
  uint32_t crc = 0;
  std::memcpy(&crc, raw.data() + 16, 4);
  ASSERT_EQ(file_crc32(split("escape/bin.debug")), std::optional<uint32_t>(crc))
      << "the fixture's target must be otherwise acceptable";
  EXPECT_FALSE(read_debuglink(**elf).has_value());
  DebugSearch where;
  where.debug_dirs = {"/nonexistent-debug-dir"};
  EXPECT_EQ(find_debug_file(**elf, split("escape/sub/bin"), where).path, "");
}

// A FIFO where a debug file should be (a container controls its own
// /usr/lib/debug) is skipped at once: opening it for reading would block the
// symbolizer for good.
TEST(DebugFiles, AFifoAtTheDebugPathDoesNotBlock) {
  const fs::path root = fs::temp_directory_path() / ("ember-fifo-root-" + std::to_string(getpid()));
  fs::remove_all(root);
  auto elf = ElfFile::open(split("buildid/bin"));
  ASSERT_TRUE(elf.ok());
  const std::string id = (*elf)->build_id();
  ASSERT_GT(id.size(), 2u);
  const fs::path dir = root / "usr/lib/debug/.build-id" / id.substr(0, 2);
  fs::create_directories(dir);
  const fs::path fifo = dir / (id.substr(2) + ".debug");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(ElfFile::open(fifo.string()).ok());
  EXPECT_FALSE(file_crc32(fifo.string()).has_value());
  DebugSearch where;
  where.root = root.string();
  where.debug_dirs = {"/usr/lib/debug"};
  EXPECT_EQ(find_debug_file(**elf, split("buildid/bin"), where).path, "");
  fs::remove_all(root);
}

TEST(DebugFiles, DebuglinkWithWrongCrcIsRejected) {
  auto elf = ElfFile::open(split("badcrc/bin"));
  ASSERT_TRUE(elf.ok());
  auto link = read_debuglink(**elf);
  ASSERT_TRUE(link.has_value());
  EXPECT_EQ(link->name, "bin.debug");
  ASSERT_TRUE(fs::exists(split("badcrc/bin.debug")));  // right name, wrong content
  EXPECT_NE(file_crc32(split("badcrc/bin.debug")), std::optional<uint32_t>(link->crc));
  DebugSearch where;
  where.debug_dirs = {"/nonexistent-debug-dir"};
  EXPECT_EQ(find_debug_file(**elf, split("badcrc/bin"), where).path, "");
  auto bin = load(split("badcrc/bin"), with_dwarf());
  ASSERT_TRUE(bin);
  EXPECT_FALSE(bin->has_dwarf());
  EXPECT_EQ(bin->symbol_source(), ".dynsym");
}

TEST(DebugFiles, MiniDebugInfoNamesLocalFunctions) {
  auto bin = load(split("mini/bin"), with_dwarf());
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->symbol_source(), ".dynsym+.gnu_debugdata");
  EXPECT_FALSE(bin->has_dwarf());
  auto original = load(fixture("inline_heavy_cxx"), Binary::LoadOptions{});
  ASSERT_TRUE(original);
  // Every strong function symbol of the original (what MiniDebugInfo keeps:
  // T and t; weak C++ inline functions stay out, as in Fedora's builds) is
  // named the same. No lines: MiniDebugInfo has symbols only.
  std::set<std::string> strong;
  if (FILE* p = popen(("nm --defined-only '" + fixture("inline_heavy_cxx") + "'").c_str(), "r")) {
    char addr[64], type[8], name[4096];
    while (std::fscanf(p, "%63s %7s %4095s", addr, type, name) == 3)
      if (type[0] == 'T' || type[0] == 't') strong.insert(name);
    pclose(p);
  }
  ASSERT_GT(strong.size(), 10u);
  size_t functions = 0;
  std::vector<SourceFrame> got, want;
  for (const Symbol& s : original->symbols()) {
    if (s.size == 0 || !strong.count(std::string(original->name_of(s)))) continue;
    original->describe(s.start, false, true, &want);
    bin->describe(s.start, false, true, &got);
    ASSERT_FALSE(want.empty());
    ASSERT_FALSE(got.empty()) << want.back().function;
    EXPECT_EQ(got.back().function, want.back().function);
    ++functions;
  }
  EXPECT_GT(functions, 10u);
  ASSERT_NE(bin->lookup(original->lookup(original->entry())->start), nullptr);
}

// A containerized process: its binary and debug files exist only under
// /proc/PID/root. The Symbolizer must find both through that root (here a
// fixture /proc tree whose PID/root points at the container's filesystem).
TEST(DebugFiles, ContainerProcessThroughProcRoot) {
  fs::path tmp = fs::temp_directory_path() / ("ember-debugfiles-" + std::to_string(getpid()));
  fs::remove_all(tmp);
  fs::path container = tmp / "container";
  fs::create_directories(container / "usr/bin");
  fs::copy(split("buildid/root/usr"), container / "usr", fs::copy_options::recursive);
  fs::copy_file(split("buildid/bin"), container / "usr/bin/app");
  fs::path proc = tmp / "proc";
  fs::create_directories(proc / "4242");
  fs::create_directory_symlink(container, proc / "4242/root");
  struct stat st{};
  ASSERT_EQ(::stat((container / "usr/bin/app").c_str(), &st), 0);
  const uint64_t base = 0x555555554000ull;
  {
    std::ofstream maps(proc / "4242/maps");
    char line[256];
    std::snprintf(line, sizeof(line), "%llx-%llx r-xp 00000000 %02x:%02x %llu %s\n",
                  (unsigned long long)base, (unsigned long long)(base + 0x100000), major(st.st_dev),
                  minor(st.st_dev), (unsigned long long)st.st_ino, "/usr/bin/app");
    maps << line;
  }
  auto snap = read_process_snapshot(proc.string(), 4242);
  ASSERT_TRUE(snap.ok()) << snap.error().message;

  SymbolizerOptions so;
  so.proc_root = proc.string();
  so.debug_dirs = {"/usr/lib/debug"};
  Symbolizer sym(so);
  auto original = load(fixture("inline_heavy_cxx"), with_dwarf());
  ASSERT_TRUE(original);
  size_t checked = 0;
  for (const Symbol& s : original->symbols()) {
    std::string name(original->name_of(s));
    if (name != "main") continue;
    // File offset of main (the whole file is mapped from offset 0 here).
    uint64_t off = 0;
    for (const auto& seg : original->segments())
      if (s.start >= seg.vaddr && s.start < seg.vaddr + seg.memsz) off = s.start - seg.vaddr + seg.offset;
    ASSERT_NE(off, 0u);
    UserSymbol us = sym.resolve_user(**snap, base + off + 4, /*return_address=*/false);
    ASSERT_TRUE(us.binary);
    EXPECT_EQ(us.function, "main");
    ASSERT_FALSE(us.frames.empty());
    EXPECT_NE(us.frames.back().file.find("inline_heavy.cc"), std::string::npos);
    EXPECT_GT(us.frames.back().line, 0);
    EXPECT_NE(us.binary->dwarf_source().find("/root/usr/lib/debug/.build-id/"), std::string::npos)
        << us.binary->dwarf_source();
    ++checked;
  }
  EXPECT_EQ(checked, 1u);
  fs::remove_all(tmp);
}

// The fixture of a container process (as above), PID 4242 mapping
// /usr/bin/app, with `pid` added for a second process of the same
// container; returns the /proc tree.
struct ContainerFixture {
  fs::path tmp, container, proc;
  uint64_t base = 0x555555554000ull;
  uint64_t main_offset = 0;  // file offset of main in the app

  ContainerFixture() {
    tmp = fs::temp_directory_path() / ("ember-gone-" + std::to_string(getpid()));
    fs::remove_all(tmp);
    container = tmp / "container";
    fs::create_directories(container / "usr/bin");
    fs::copy(split("buildid/root/usr"), container / "usr", fs::copy_options::recursive);
    fs::copy_file(split("buildid/bin"), container / "usr/bin/app");
    proc = tmp / "proc";
    auto original = load(fixture("inline_heavy_cxx"), with_dwarf());
    for (const Symbol& s : original->symbols()) {
      if (original->name_of(s) != "main") continue;
      for (const auto& seg : original->segments())
        if (s.start >= seg.vaddr && s.start < seg.vaddr + seg.memsz)
          main_offset = s.start - seg.vaddr + seg.offset;
    }
  }
  ~ContainerFixture() { fs::remove_all(tmp); }
  void add_process(int pid) {
    fs::create_directories(proc / std::to_string(pid));
    fs::create_directory_symlink(container, proc / std::to_string(pid) / "root");
    struct stat st{};
    ::stat((container / "usr/bin/app").c_str(), &st);
    std::ofstream maps(proc / std::to_string(pid) / "maps");
    char line[256];
    std::snprintf(line, sizeof(line), "%llx-%llx r-xp 00000000 %02x:%02x %llu %s\n",
                  (unsigned long long)base, (unsigned long long)(base + 0x100000), major(st.st_dev),
                  minor(st.st_dev), (unsigned long long)st.st_ino, "/usr/bin/app");
    maps << line;
  }
  void remove_process(int pid) { fs::remove_all(proc / std::to_string(pid)); }
};

// A process that exits before its binaries are parsed: the root its
// snapshot holds open still leads to its debug file.
TEST(DebugFiles, HeldRootFindsTheDebugFileAfterTheProcessIsGone) {
  ContainerFixture f;
  ASSERT_NE(f.main_offset, 0u);
  f.add_process(4242);
  auto snap = read_process_snapshot(f.proc.string(), 4242);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  (*snap)->root = RootDir::open((f.proc / "4242/root").string());
  ASSERT_TRUE((*snap)->root);
  f.remove_process(4242);  // gone: /proc/4242/root no longer exists
  ASSERT_FALSE(fs::exists(f.proc / "4242"));

  SymbolizerOptions so;
  so.proc_root = f.proc.string();
  Symbolizer sym(so);
  // The mapped file itself is opened by path through the held root too.
  UserSymbol us = sym.resolve_user(**snap, f.base + f.main_offset + 4, false);
  ASSERT_TRUE(us.binary);
  EXPECT_EQ(us.function, "main");
  EXPECT_FALSE(us.binary->debug_deferred());
  EXPECT_NE(us.binary->debug_file().find("/usr/lib/debug/.build-id/"), std::string::npos);
}

// Without a held root, a gone process's lookup is deferred, never cached as
// "no debug file": the next process to map the binary gets its symbols, and
// the retry is counted.
TEST(DebugFiles, LookupDeferredForAGoneProcessIsRetriedForTheNextOne) {
  ContainerFixture f;
  ASSERT_NE(f.main_offset, 0u);
  f.add_process(4242);
  auto first = read_process_snapshot(f.proc.string(), 4242);
  ASSERT_TRUE(first.ok());
  // Pin the mapped file (as the process table does) so it can still be read.
  UniqueFd app(::open((f.container / "usr/bin/app").c_str(), O_RDONLY | O_CLOEXEC));
  (*first)->pinned.push_back(std::make_shared<PinnedFile>(std::move(app), nullptr));
  f.remove_process(4242);

  SymbolizerOptions so;
  so.proc_root = f.proc.string();
  Symbolizer sym(so);
  UserSymbol gone = sym.resolve_user(**first, f.base + f.main_offset + 4, false);
  ASSERT_TRUE(gone.binary);
  EXPECT_TRUE(gone.binary->debug_deferred());
  EXPECT_NE(gone.function, "main");  // the stripped file alone cannot name it
  EXPECT_EQ(sym.cache_stats().debug_deferred, 1u);

  f.add_process(4243);
  auto second = read_process_snapshot(f.proc.string(), 4243);
  ASSERT_TRUE(second.ok());
  UserSymbol live = sym.resolve_user(**second, f.base + f.main_offset + 4, false);
  ASSERT_TRUE(live.binary);
  EXPECT_EQ(live.function, "main");
  EXPECT_FALSE(live.binary->debug_deferred());
  auto st = sym.cache_stats();
  EXPECT_EQ(st.debug_retries, 1u);
  EXPECT_EQ(st.debug_retries_found, 1u);
  // Final now: the next lookup is a plain hit.
  UserSymbol again = sym.resolve_user(**second, f.base + f.main_offset + 4, false);
  EXPECT_EQ(again.function, "main");
  EXPECT_EQ(sym.cache_stats().debug_retries, 1u);
}

// A binary whose build-id debug file is in the agent's own filesystem is
// named even when its process's root is gone: a build-id match is the right
// file wherever it lives. A debuglink-only binary is deferred instead.
TEST(DebugFiles, GoneRootStillFindsBuildIdDebugFilesInOurOwnFilesystem) {
  Binary::LoadOptions o = with_dwarf();
  o.debug.root = "/proc/999999999/root";  // no such process
  o.debug.debug_dirs = {split("buildid/root") + "/usr/lib/debug"};
  auto by_id = load(split("buildid/bin"), o);
  ASSERT_TRUE(by_id);
  EXPECT_FALSE(by_id->debug_deferred());
  EXPECT_EQ(by_id->symbol_source(), "debugfile:.symtab");
  // (Every split copy has the original's build-id: look elsewhere.)
  o.debug.debug_dirs = {"/nonexistent-debug-dir"};
  auto by_link = load(split("link/bin"), o);
  ASSERT_TRUE(by_link);
  EXPECT_TRUE(by_link->debug_deferred());
  EXPECT_EQ(by_link->symbol_source(), ".dynsym");
}

// A deferred binary is parsed again when its root is back. If the file under
// the same identity (dev, inode, size, mtime) no longer parses, because a
// workload rewrote it and put its mtime back, the cached binary is kept: no
// crash on the failed parse.
TEST(DebugFiles, ADeferredBinaryThatNoLongerParsesKeepsItsCachedSymbols) {
  namespace fs = std::filesystem;
  const std::string path = "/tmp/ember-deferred-" + std::to_string(getpid());
  fs::copy_file(split("link/bin"), path, fs::copy_options::overwrite_existing);
  BinaryCache cache({});
  Binary::LoadOptions gone = with_dwarf();
  gone.debug.root = "/proc/999999999/root";  // no such process
  auto first = cache.get(UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), path, gone);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE((*first)->debug_deferred());

  struct stat before{};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  {
    std::ofstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(0);
    out.write("NOTANELF", 8);  // same size, no ELF magic
  }
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);

  Binary::LoadOptions live = with_dwarf();
  live.debug.root = "/";
  auto again = cache.get(UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), path, live);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->get(), first->get());
  fs::remove(path);
}

// A real debuginfod server (elfutils' `debuginfod`, Debian package
// debuginfod) indexes a directory holding the debug file; the stripped
// binary, with no debug file on the host, gets its DWARF from the server.
class DebuginfodServer {
 public:
  // Starts `debuginfod -F` over `dir` on a free port; "" port on failure.
  DebuginfodServer(const fs::path& dir, const fs::path& work) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
    ::close(s);
    std::string log = (work / "debuginfod.log").string();
    std::string db = (work / "debuginfod.sqlite").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string p = std::to_string(port_);
      ::execlp("debuginfod", "debuginfod", "-F", "-p", p.c_str(), "-d", db.c_str(), "-t", "0", "-g", "0",
               dir.c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~DebuginfodServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Waits until the server answers for `build_id` (it scans in the
  // background); false after `timeout_s`.
  bool wait_indexed(const std::string& build_id, int timeout_s) const {
    std::string u = url() + "/buildid/" + build_id + "/debuginfo";
    for (int i = 0; i < timeout_s * 10; ++i) {
      CURL* c = curl_easy_init();
      curl_easy_setopt(c, CURLOPT_URL, u.c_str());
      // debuginfod answers GET only; drop the body.
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
                       +[](char*, size_t size, size_t n, void*) -> size_t { return size * n; });
      curl_easy_setopt(c, CURLOPT_TIMEOUT, 2L);
      long code = 0;
      if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
      curl_easy_cleanup(c);
      if (code == 200) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return false;  // died
      ::usleep(100000);
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST(DebugFiles, FromDebuginfodServer) {
  if (system("command -v debuginfod >/dev/null") != 0)
    GTEST_FAIL() << "debuginfod (Debian package debuginfod) is needed; scripts/install-deps.sh installs it";
  fs::path tmp = fs::temp_directory_path() / ("ember-debuginfod-" + std::to_string(getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "served");
  fs::copy(split("buildid/root/usr/lib/debug"), tmp / "served", fs::copy_options::recursive);
  auto elf = ElfFile::open(split("buildid/bin"));
  ASSERT_TRUE(elf.ok());
  std::string id = (*elf)->build_id();
  ASSERT_FALSE(id.empty());

  DebuginfodServer server(tmp / "served", tmp);
  ASSERT_TRUE(server.wait_indexed(id, 60)) << "debuginfod did not come up; see " << (tmp / "debuginfod.log");

  DebuginfodClient::Options o;
  o.urls = {server.url()};
  o.cache_dir = (tmp / "cache").string();
  o.timeout_s = 5;
  auto client = DebuginfodClient::create(o);
  ASSERT_TRUE(client.ok()) << client.error().message;

  Binary::LoadOptions lo = with_dwarf();
  lo.debuginfod = client->get();
  lo.now_ns = 1'000'000'000;
  auto bin = Binary::load(std::move(*elf), lo);
  ASSERT_TRUE(bin.ok());
  EXPECT_EQ((*bin)->symbol_source(), "debugfile:.symtab");
  EXPECT_NE((*bin)->dwarf_source().find((tmp / "cache").string()), std::string::npos)
      << (*bin)->dwarf_source();
  EXPECT_GT(expect_same_as_original(**bin), 1000u);
  EXPECT_EQ((*client)->stats().fetched, 1u);

  // A build-id no server has: asked once, then remembered as a miss until
  // the retry interval has passed.
  const std::string unknown = "00112233445566778899aabbccddeeff00112233";
  EXPECT_EQ((*client)->find_debuginfo(unknown, 1'000'000'000), "");
  EXPECT_EQ((*client)->find_debuginfo(unknown, 2'000'000'000), "");
  EXPECT_EQ((*client)->stats().not_found, 1u);
  EXPECT_EQ((*client)->stats().skipped, 1u);
  EXPECT_EQ((*client)->find_debuginfo(unknown, 1'000'000'000 + o.retry_after_ns), "");
  EXPECT_EQ((*client)->stats().not_found, 2u);
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace ember
