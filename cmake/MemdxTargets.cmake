# Per-target settings: warnings and sanitizers are attached to the targets that want them,
# never directory-wide, so the injected tracer (src/trace/preload) can opt out of the sanitizers.

function(memdx_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion
                                           # GCC 12 reports std::string concatenation falsely (GCC bug 105651).
                                           -Wno-restrict)
endfunction()

function(memdx_sanitize target)
  if(MEMDX_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${MEMDX_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${MEMDX_SANITIZE})
  endif()
endfunction()

# The include root of one module: a directory in the build tree holding only a link to the
# module's sources (src/DIR as "DIR/x.h"), so that a module sees the headers of the modules it
# links and no others: an include that crosses the architecture's arrows does not compile.
function(memdx_include_root target subdirectory)
  set(root ${PROJECT_BINARY_DIR}/include-roots/${target})
  get_filename_component(parent ${root}/${subdirectory} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${subdirectory} ${root}/${subdirectory} SYMBOLIC)
  set(memdx_include_root ${root} PARENT_SCOPE)
endfunction()

# A module library of memdx: warnings and sanitizers on, its own headers and those of the
# modules it links reachable as "proc/x.h" (and nothing else of src/), the public headers as
# "memdx/x.h". Position-independent and hidden: the modules are linked into libmemdx.so too,
# which exports only what the public headers mark MEMDX_API.
function(memdx_module target)
  add_library(${target} STATIC ${ARGN})
  get_filename_component(subdirectory ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  memdx_include_root(${target} ${subdirectory})
  target_include_directories(${target} PUBLIC ${memdx_include_root} ${PROJECT_SOURCE_DIR}/include
                                              ${PROJECT_BINARY_DIR}/include)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON CXX_VISIBILITY_PRESET hidden
                                             VISIBILITY_INLINES_HIDDEN ON)
  memdx_warnings(${target})
  memdx_sanitize(${target})
endfunction()
