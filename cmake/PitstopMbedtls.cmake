# mbedTLS 2.28 ships neither pkg-config files nor a CMake package: find the
# three libraries and wrap them in one imported target, Pitstop::mbedtls.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/version.h REQUIRED)
find_library(MBEDTLS_LIB mbedtls REQUIRED)
find_library(MBEDX509_LIB mbedx509 REQUIRED)
find_library(MBEDCRYPTO_LIB mbedcrypto REQUIRED)
if(NOT TARGET Pitstop::mbedtls)
  add_library(Pitstop::mbedtls INTERFACE IMPORTED)
  set_target_properties(Pitstop::mbedtls PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${MBEDTLS_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${MBEDTLS_LIB};${MBEDX509_LIB};${MBEDCRYPTO_LIB}")
endif()
