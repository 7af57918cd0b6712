# Warnings as an INTERFACE target that every project target links.
add_library(kdscope_warnings INTERFACE)
target_compile_options(kdscope_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor
                                 -Wno-unused-parameter>)
if(KDSCOPE_SANITIZE)
  target_compile_options(kdscope_warnings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(kdscope_warnings INTERFACE -fsanitize=address,undefined)
endif()
