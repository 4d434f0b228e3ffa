// Demangling of symbol names for display. Names that are not mangled come
// back unchanged, so callers need not check first.
//
// Schemes understood:
//   * C++ Itanium ABI ("_Z..."), via abi::__cxa_demangle.
//   * Rust legacy ("_ZN...17h<16 hex>E"), i.e. Itanium-shaped paths whose
//     last element is the rustc hash. Only names carrying that hash are
//     treated as Rust, so C++ names always go through __cxa_demangle.
//   * Rust v0 ("_R..."), RFC 2603 / -C symbol-mangling-version=v0.
//
// Why Rust is demangled by our own code and C++ by a library. C++ goes through
// libstdc++'s abi::__cxa_demangle, which is GNU libiberty's demangler, the one
// perf, gdb and c++filt print, so names match theirs. For Rust, the two
// libraries on the machine were measured against ours (bench/demangle/run.sh,
// 2026-12-05, LLVM 14 libLLVMDemangle and libiberty 20230104):
//   * the 50 v0 vectors of the specification (tests/unit/demangle_test.cc):
//     ours 50, LLVM 40, libiberty 41. Both refuse const str, ref, array,
//     tuple and struct values and non-ASCII punycode that rustc-demangle
//     accepts; LLVM appends ".llvm.*" suffixes in parentheses; libiberty
//     misreads a 128-bit hex constant ("0x23456789abcdef0123_").
//   * hostile symbols, which any tenant can put in a binary that the root
//     agent reads: a 196-byte chain of doubling type backreferences makes
//     both print 12.6 MB; 236 bytes, 201 MB in 2.4 s (LLVM) and 3.7 s
//     (libiberty); 276 bytes, both still running after 20 s, and LLVM
//     aborts in std::terminate at 316 bytes under a 4 GiB limit. A 45-byte
//     symbol keeps libiberty running past 20 s. Ours refuses all of them in
//     at most 22 ms (output capped at 1 MiB, 2^20 grammar steps, depth 500).
//   * speed: ours 279 ns per symbol, LLVM 135, libiberty 245: LLVM's speed
//     is not worth an agent that one symbol can stall or abort.
// A bounded wrapper around either library would need to know the output size
// before calling it, which takes a v0 parser: this one.
//
// A symbol version ("name@@GLIBC_2.2.5" / "name@VER") is split off before
// demangling and dropped when demangling succeeds (as it always was); when
// the name does not demangle, the input comes back byte for byte.
//
// DemangleStyle::kFull
//   C++:  exactly abi::__cxa_demangle's output.
//   Rust: rustc-demangle's alternate form ("{:#}"): no "::h<hash>" suffix
//         (legacy), no crate disambiguators "[1a2b..]" and no type suffix on
//         const-generic integers (v0). ThinLTO ".llvm.<HEX>" suffixes are
//         dropped; other "."-suffixes (".cold", ".exit.i") are kept verbatim.
//
// DemangleStyle::kSimplified -- one name per source function, for flame graphs:
//   C++:  "ns::Class::method". Removed: template argument lists, the
//         parameter list and the cv/ref/noexcept qualifiers after it, the
//         return type, ABI tags ("[abi:cxx11]") and every
//         " [clone .constprop.0]"/" [clone .cold]" suffix (so GCC's clones
//         are merged with the function they were cloned from). Kept:
//         operator names ("operator<", "operator()", "operator<<",
//         "operator new[]", "operator int"), lambdas and other braces verbatim
//         ("{lambda(int)#1}"), "(anonymous namespace)", destructors, and the
//         enclosing function of local entities without its parameters
//         ("f::{lambda()#1}::operator()"). Special names keep their prefix:
//         "vtable for std::vector", "non-virtual thunk to Der::w".
//         Names the simplifier cannot parse come back in the full form.
//   Rust: no generic arguments anywhere (also none inside impl headers:
//         "<alloc::vec::Vec as core::ops::drop::Drop>::drop"), no hash, no
//         "."-suffix. An inherent impl on a path type loses its angle brackets
//         ("<core::option::Option<T>>::unwrap" -> "core::option::Option::unwrap");
//         other self types keep them ("<[u8]>::to_vec"). Closures and shims
//         stay ("a::main::{closure#0}", legacy "a::main::{{closure}}").
#pragma once

#include <string>
#include <string_view>

namespace ember {

enum class DemangleStyle {
  kFull,        // everything the mangled name says (C++: parameter types, templates)
  kSimplified,  // what a flame graph wants: no parameter list, no template arguments,
                // no Rust hash: "ns::Class::method", "std::vector::push_back", "core::fmt::write"
};

std::string demangle(std::string_view name, DemangleStyle style = DemangleStyle::kFull);

}  // namespace ember
