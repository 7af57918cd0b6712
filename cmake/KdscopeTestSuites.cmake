# kdscope_add_gtest_suites(TARGET SOURCES... LABELS ... [ENVIRONMENT ...] [KERNEL_VARIANT_SUITES ...])
# One ctest test per GoogleTest suite (TEST(Suite, ...), TEST_F, TEST_P), found by scanning
# the sources: one process per test would start LibTorch 300 times (~1 s each); one process
# for everything would hide which suite failed. Suites are found at configure time, and the
# glob in tests/CMakeLists.txt re-runs configure when test files are added.
#
# Each suite runs through cmake/run_gtest_suite.sh, which fails on a non-zero exit (a crash
# after GoogleTest's summary, a sanitizer report at exit) and on a filter that matched
# nothing, and reports a suite whose tests all skipped as skipped (exit 77).
#
# KERNEL_VARIANT_SUITES: suites whose results must not depend on the CPU's kernels (the
# determinism tests). Each also runs under other kernels than this CPU's own, chosen through
# LibTorch's ATEN_CPU_CAPABILITY and OpenBLAS's OPENBLAS_CORETYPE, so a test that only passes
# with one CPU's kernels fails here first (docs/architecture.md, "Determinism"):
#   .kernels_sse  ATen's default (no AVX) kernels, OpenBLAS's Prescott (SSE3) kernels
#   .kernels_avx  ATen's AVX2 kernels, OpenBLAS's Sandybridge (AVX) kernels
# Both also set KDSCOPE_CPU_BF16=0 (core/engine/precision.h): such CPUs have no native bf16,
# so training.precision "auto" (the default) runs fp32 there, as it would on them.
# With the plain run (this CPU's own: here ATen AVX2 and, as this workplace sets it,
# OpenBLAS Haswell) that is two ATen and three OpenBLAS kernel sets. A variant whose
# instructions this CPU lacks is skipped with that reason ('pni' is how Linux names SSE3).
set(KDSCOPE_KERNEL_VARIANTS
  "kernels_sse|pni|ATEN_CPU_CAPABILITY=default|OPENBLAS_CORETYPE=Prescott|KDSCOPE_CPU_BF16=0"
  "kernels_avx|avx2|ATEN_CPU_CAPABILITY=avx2|OPENBLAS_CORETYPE=Sandybridge|KDSCOPE_CPU_BF16=0")
set(KDSCOPE_GTEST_RUNNER ${CMAKE_CURRENT_LIST_DIR}/run_gtest_suite.sh)

function(kdscope_add_gtest_suites target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LABELS;ENVIRONMENT;KERNEL_VARIANT_SUITES" ${ARGN})
  set(suites "")
  foreach(src IN LISTS ARG_SOURCES)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
    file(STRINGS ${src} lines REGEX "^[ \t]*(TEST|TEST_F|TEST_P|TYPED_TEST)\\([A-Za-z0-9_]+,")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "^[ \t]*(TEST|TEST_F|TEST_P|TYPED_TEST)\\(([A-Za-z0-9_]+),.*" "\\2" suite "${line}")
      string(REGEX MATCH "^[ \t]*TEST_P" isParam "${line}")
      if(isParam)
        set(suite "*/${suite}")
      endif()
      list(APPEND suites "${suite}")
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES suites)
  foreach(suite IN LISTS suites)
    string(REPLACE "*/" "" name "${suite}")
    add_test(NAME ${target}.${name}
             COMMAND ${KDSCOPE_GTEST_RUNNER} -- $<TARGET_FILE:${target}> --gtest_filter=${suite}.*)
    set_tests_properties(${target}.${name} PROPERTIES LABELS "${ARG_LABELS}" SKIP_RETURN_CODE 77)
    if(ARG_ENVIRONMENT)
      set_tests_properties(${target}.${name} PROPERTIES ENVIRONMENT "${ARG_ENVIRONMENT}")
    endif()
    if(name IN_LIST ARG_KERNEL_VARIANT_SUITES)
      foreach(variant IN LISTS KDSCOPE_KERNEL_VARIANTS)
        string(REPLACE "|" ";" parts "${variant}")
        list(GET parts 0 variantName)
        list(GET parts 1 cpuFlag)
        list(SUBLIST parts 2 -1 variantEnv)
        if(ARG_ENVIRONMENT)
          list(PREPEND variantEnv ${ARG_ENVIRONMENT})
        endif()
        add_test(NAME ${target}.${name}.${variantName}
                 COMMAND ${KDSCOPE_GTEST_RUNNER} --needs-cpu-flag ${cpuFlag} --
                         $<TARGET_FILE:${target}> --gtest_filter=${suite}.*)
        set_tests_properties(${target}.${name}.${variantName} PROPERTIES
          LABELS "${ARG_LABELS};kernels" SKIP_RETURN_CODE 77
          ENVIRONMENT "${variantEnv}")
      endforeach()
    endif()
  endforeach()
endfunction()
