// The target environment: explicit values become every PEP 508 marker variable, never the host's.
#include <doctest/doctest.h>

#include "pkg/target.h"

namespace lazyfs::pkg {

TEST_CASE("MakeTarget: marker variables come from the target, not the host") {
  TargetEnvironment cpython = MakeTarget("3.12", "musllinux_1_2_aarch64").value();
  MarkerEnvironment env = cpython.Markers();
  CHECK(env.values.at("python_version") == "3.12");
  CHECK(env.values.at("python_full_version") == "3.12.0");
  CHECK(env.values.at("implementation_name") == "cpython");
  CHECK(env.values.at("implementation_version") == "3.12.0");
  CHECK(env.values.at("platform_python_implementation") == "CPython");
  CHECK(env.values.at("platform_machine") == "aarch64");
  CHECK(env.values.at("sys_platform") == "linux");
  CHECK(env.values.at("platform_system") == "Linux");
  CHECK(env.values.at("os_name") == "posix");
  CHECK(env.values.at("extra") == "");
  CHECK(cpython.PythonVersion() == "3.12");
  CHECK(cpython.Tags().front().ToString() == "cp312-cp312-musllinux_1_2_aarch64");

  TargetEnvironment pypy = MakeTarget("3.9.18", "", "pp").value();
  env = pypy.Markers();
  CHECK(env.values.at("implementation_name") == "pypy");
  CHECK(env.values.at("platform_python_implementation") == "PyPy");
  CHECK(env.values.at("python_full_version") == "3.9.18");
  CHECK(env.values.at("platform_machine") == "x86_64");  // the default platform: Debian 12 on x86_64
}

TEST_CASE("MakeTarget: what is not a CPython or PyPy 3.X[.Y] target is an error naming it") {
  CHECK(MakeTarget("3", "").error().message().find("'3'") != std::string::npos);
  CHECK(!MakeTarget("2.7", ""));
  CHECK(!MakeTarget("3.11.2.1", ""));
  CHECK(!MakeTarget("3.x", ""));
  CHECK(MakeTarget("3.11", "", "jy").error().message().find("'jy'") != std::string::npos);
  CHECK(!MakeTarget("3.11", "win_amd64"));
}

}  // namespace lazyfs::pkg
