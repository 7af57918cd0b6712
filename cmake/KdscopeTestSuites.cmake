# kdscope_add_gtest_suites(TARGET SOURCES... LABELS ... [ENVIRONMENT ...])
# One ctest test per GoogleTest suite (TEST(Suite, ...), TEST_F, TEST_P), found by scanning
# the sources: one process per test would start LibTorch 300 times (~1 s each); one process
# for everything would hide which suite failed. Suites are found at configure time, and the
# glob in tests/CMakeLists.txt re-runs configure when test files are added.
function(kdscope_add_gtest_suites target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LABELS;ENVIRONMENT" ${ARGN})
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
    add_test(NAME ${target}.${name} COMMAND ${target} --gtest_filter=${suite}.*)
    # A filter that matches nothing makes gtest exit 0: require at least one passed test and
    # no failure (a crash prints neither line and so fails too).
    set_tests_properties(${target}.${name} PROPERTIES LABELS "${ARG_LABELS}"
      PASS_REGULAR_EXPRESSION "\\[  PASSED  \\] [1-9][0-9]* test"
      FAIL_REGULAR_EXPRESSION "\\[  FAILED  \\]")
    if(ARG_ENVIRONMENT)
      set_tests_properties(${target}.${name} PROPERTIES ENVIRONMENT "${ARG_ENVIRONMENT}")
    endif()
  endforeach()
endfunction()
