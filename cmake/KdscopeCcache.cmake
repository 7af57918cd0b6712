# Route compiles through ccache when present; precompiled headers need the sloppiness below.
# CCACHE_BASEDIR makes paths inside the checkout relative, so a fresh clone elsewhere (CI, a
# git worktree) reuses the same cache entries.
if(KDSCOPE_USE_CCACHE)
  find_program(KDSCOPE_CCACHE ccache)
  if(KDSCOPE_CCACHE)
    set(CMAKE_C_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
        ${KDSCOPE_CCACHE})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_C_COMPILER_LAUNCHER})
  endif()
endif()
