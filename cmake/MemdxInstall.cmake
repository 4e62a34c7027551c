# What `cmake --install` and the .deb (cpack -G DEB) put where:
#   bin/memdx                                 the command
#   LIBDIR/libmemdx.so*                       the library (memdx::memdx, -lmemdx)
#   LIBDIR/memdx/libmemdx_trace.so            the heap tracer memdx injects (found from bin/memdx)
#   LIBDIR/libmemdx_testing_heap.so*          the allocation recorder a test links (memdx::testing)
#   include/memdx/*.h                         the public headers, <memdx/memdx.h>
#   LIBDIR/cmake/memdx/                       memdxConfig.cmake, its version file, the targets
#   LIBDIR/pkgconfig/memdx.pc                 for pkg-config
include(CMakePackageConfigHelpers)

install(TARGETS memdx RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS memdx_trace LIBRARY DESTINATION ${MEMDX_TRACER_INSTALL_DIR})
install(TARGETS memdx_library EXPORT memdxTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# memdx::testing, what a GoogleTest program links for <memdx/testing.h>: libmemdx and the recorder
# (not in a sanitizer build, where memdx::testing is libmemdx alone).
if(TARGET memdx_testing_heap)
  install(TARGETS memdx_testing_heap EXPORT memdxTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(TARGETS memdx_testing EXPORT memdxTargets)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/memdx ${PROJECT_BINARY_DIR}/include/memdx
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")

set(memdx_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/memdx)
install(EXPORT memdxTargets NAMESPACE memdx:: DESTINATION ${memdx_cmake_dir})
configure_package_config_file(cmake/memdxConfig.cmake.in ${PROJECT_BINARY_DIR}/memdxConfig.cmake
                              INSTALL_DESTINATION ${memdx_cmake_dir}
                              PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR)
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/memdxConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/memdxConfig.cmake ${PROJECT_BINARY_DIR}/memdxConfigVersion.cmake
        DESTINATION ${memdx_cmake_dir})

# The .pc file finds its prefix from where it lies, so an installed tree can move (a DESTDIR, a .deb).
file(RELATIVE_PATH MEMDX_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(cmake/memdx.pc.in ${PROJECT_BINARY_DIR}/memdx.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/memdx.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# cpack -G DEB: one package, memdx, installing under /usr.
set(CPACK_PACKAGE_NAME memdx)
set(CPACK_PACKAGE_VENDOR memdx)
set(CPACK_PACKAGE_CONTACT "memdx <memdx@memdx.dev>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "what a process's memory is, whether it leaks, and which code holds it")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# The Depends line from the libraries the files link (libdw1, libsqlite3-0, libfmt9, ...).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file for packages that link libmemdx, and the ldconfig trigger for the library.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_GENERATOR DEB)
include(CPack)
