# Memory checks of the Lua bindings, label "memcheck". Meant to be included
# from tests/CMakeLists.txt after the busted spec loop (it reads
# STRATA_LUA_SPECS, LUA_EXE and STRATA_TEST_ENV from there):
#   include(${CMAKE_CURRENT_SOURCE_DIR}/lua/CMakeLists.memcheck.cmake)
#
# - Ordinary builds: stock lua5.4 runs tests/lua/gc_stress.lua (the GC
#   stress loop of gc_spec.lua, smaller) under valgrind against the built
#   module; an invalid access or a definite leak fails the test.
# - Sanitizer builds (-DSTRATA_SANITIZE=ON): strata/core.so is built with
#   ASan but lua5.4 is not, so the ASan runtime must be loaded first with
#   LD_PRELOAD. Every lua_* spec gets it, and the stress loop runs once
#   more with LeakSanitizer on.
if(NOT TARGET strata_exe)
  return()
endif()

set(STRATA_LUA_MEMCHECK_ENV
  "${STRATA_TEST_ENV};LUA_PATH=${PROJECT_SOURCE_DIR}/lua/?.lua\;${PROJECT_SOURCE_DIR}/lua/?/init.lua\;${CMAKE_CURRENT_SOURCE_DIR}/lua/?.lua\;\;;LUA_CPATH=${PROJECT_BINARY_DIR}/lua/?.so\;\;")
set(STRATA_GC_STRESS ${CMAKE_CURRENT_SOURCE_DIR}/lua/gc_stress.lua)

if(STRATA_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE STRATA_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  foreach(spec ${STRATA_LUA_SPECS})
    get_filename_component(name ${spec} NAME_WE)
    # busted and its C helpers are not ours: no leak report for them.
    # gc_spec measures resident memory, which ASan's quarantine of freed
    # blocks would inflate; the stress test below keeps the quarantine.
    set(options "detect_leaks=0")
    if(name STREQUAL "gc_spec")
      set(options "detect_leaks=0:quarantine_size_mb=0")
    endif()
    set_property(TEST lua_${name} APPEND PROPERTY ENVIRONMENT
                 "LD_PRELOAD=${STRATA_LIBASAN}" "ASAN_OPTIONS=${options}")
  endforeach()
  add_test(NAME lua_gc_stress_asan COMMAND ${LUA_EXE} ${STRATA_GC_STRESS} 20000)
  set_tests_properties(lua_gc_stress_asan PROPERTIES LABELS "lua;memcheck" ENVIRONMENT
    "${STRATA_LUA_MEMCHECK_ENV};LD_PRELOAD=${STRATA_LIBASAN};ASAN_OPTIONS=detect_leaks=1")
else()
  find_program(VALGRIND_EXE valgrind)
  if(VALGRIND_EXE)
    add_test(NAME lua_gc_stress_valgrind
             COMMAND ${VALGRIND_EXE} --quiet --error-exitcode=1 --leak-check=full
                     --errors-for-leak-kinds=definite ${LUA_EXE} ${STRATA_GC_STRESS} 2000)
    set_tests_properties(lua_gc_stress_valgrind PROPERTIES LABELS "lua;memcheck" TIMEOUT 300
                         ENVIRONMENT "${STRATA_LUA_MEMCHECK_ENV}")
  endif()
endif()
