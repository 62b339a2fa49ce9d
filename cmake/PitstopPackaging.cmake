# Debian packages with CPack (./scripts/package; docs/install.md):
#   pitstop-agent          component "agent":   /usr/sbin/pitstop-agent,
#                          /etc/pitstop/agent.conf, pitstop-agent.service
#   pitstop-gateway        component "gateway": /usr/sbin/pitstop-gateway,
#                          /usr/bin/pitstopctl, /etc/pitstop/gateway.conf,
#                          pitstop-gateway.service
#   pitstop-screen         component "screen":  the reference in-car screen
#                          (/usr/sbin/pitstop-screen, its page, a unit),
#                          when libmicrohttpd is there to build it
#   pitstop-broker-config  component "broker":  the broker config rendered
#                          for Debian's mosquitto as a conf.d snippet, and
#                          the broker plugin
# Both daemons' packages make the `pitstop` system user and their state dir
# (packaging/debian/postinst.in). Files outside the components (the
# plugin's own install rule, for `cmake --install`) are not packaged.
# Included last by the top-level CMakeLists.txt, after every target exists.
set(pkg_src ${PROJECT_SOURCE_DIR}/packaging)
set(pkg_bin ${PROJECT_BINARY_DIR}/packaging)
set(PITSTOP_UNIT_DIR /lib/systemd/system) # Debian 12's systemdsystemunitdir
set(PITSTOP_PLUGIN_DIR lib/pitstop)       # under the packaging prefix /usr
set(PITSTOP_PKI_DIR /etc/pitstop/pki)

install(FILES ${pkg_src}/agent.conf DESTINATION /etc/pitstop COMPONENT agent)
install(FILES ${pkg_src}/pitstop-agent.service DESTINATION ${PITSTOP_UNIT_DIR} COMPONENT agent)
set(pkg_components agent)
if(TARGET pitstop-screen)
  list(APPEND pkg_components screen)
  set(CPACK_DEBIAN_SCREEN_PACKAGE_NAME pitstop-screen)
  install(FILES ${pkg_src}/copyright DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/pitstop-screen
    COMPONENT screen)
endif()
if(PITSTOP_GATEWAY)
  list(APPEND pkg_components gateway broker)
  install(FILES ${pkg_src}/gateway.conf DESTINATION /etc/pitstop COMPONENT gateway)
  # The example promotion rules (promo_rules_file; a conffile too).
  install(FILES ${pkg_src}/promotions.rules DESTINATION /etc/pitstop COMPONENT gateway)
  # The web console's static files (console_dir).
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/gateway/console/ DESTINATION
    ${CMAKE_INSTALL_DATADIR}/pitstop/console COMPONENT gateway
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  install(FILES ${pkg_src}/pitstop-gateway.service DESTINATION ${PITSTOP_UNIT_DIR}
    COMPONENT gateway)
endif()

# Man pages, gzipped as Debian policy wants (gzip -9n: no name, no time).
set(man_gz)
foreach(page pitstop-agent.8:agent agent.conf.5:agent pitstop-gateway.8:gateway
    gateway.conf.5:gateway pitstopctl.1:gateway)
  string(REPLACE ":" ";" page ${page})
  list(GET page 0 file)
  list(GET page 1 comp)
  string(REGEX REPLACE ".*\\." "" section ${file})
  if(NOT comp IN_LIST pkg_components)
    continue()
  endif()
  add_custom_command(OUTPUT ${pkg_bin}/man/${file}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${pkg_bin}/man
    COMMAND sh -c "gzip -9nc \"$0\" > \"$1\"" ${PROJECT_SOURCE_DIR}/docs/man/${file}
      ${pkg_bin}/man/${file}.gz
    DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/${file} VERBATIM)
  list(APPEND man_gz ${pkg_bin}/man/${file}.gz)
  install(FILES ${pkg_bin}/man/${file}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
    COMPONENT ${comp})
endforeach()
add_custom_target(pitstop_man ALL DEPENDS ${man_gz})

if(PITSTOP_GATEWAY)
  # The broker snippet: gateway/broker/mosquitto.conf.in with Debian's paths.
  # Debian's /etc/mosquitto/mosquitto.conf already sets persistence_location
  # and log_dest file, and mosquitto refuses either twice, so those lines are
  # left to it; mosquitto runs as user mosquitto there by default.
  file(READ ${PROJECT_SOURCE_DIR}/gateway/broker/mosquitto.conf.in broker_conf)
  set(broker_plugin /usr/${PITSTOP_PLUGIN_DIR}/pitstop_broker.so)
  foreach(pair "@PORT@=8883" " @BIND@=" "@PKI@=${PITSTOP_PKI_DIR}" "@PLUGIN@=${broker_plugin}"
      "@USER@=mosquitto" "@DATA@=/var/lib/mosquitto" "@LOG@=/var/log/mosquitto/mosquitto.log")
    string(FIND "${pair}" "=" eq)
    string(SUBSTRING "${pair}" 0 ${eq} from)
    math(EXPR eq "${eq} + 1")
    string(SUBSTRING "${pair}" ${eq} -1 to)
    string(REPLACE "${from}" "${to}" broker_conf "${broker_conf}")
  endforeach()
  string(REGEX REPLACE "\n(persistence_location|log_dest file|user) ([^\n]*)"
    "\n# \\1 \\2  (set by /etc/mosquitto/mosquitto.conf)" broker_conf "${broker_conf}")
  string(REGEX REPLACE "\n[^#\n]*@[A-Z]+@" "" broker_check "\n${broker_conf}")
  if(NOT broker_check STREQUAL "\n${broker_conf}")
    message(FATAL_ERROR "gateway/broker/mosquitto.conf.in has a placeholder that "
      "cmake/PitstopPackaging.cmake does not fill in")
  endif()
  file(WRITE ${pkg_bin}/mosquitto-pitstop.conf
    "# /etc/mosquitto/conf.d/pitstop.conf (package pitstop-broker-config):\n"
    "# rendered from gateway/broker/mosquitto.conf.in for Debian's mosquitto.\n"
    "# The fleet PKI goes in ${PITSTOP_PKI_DIR} (docs/install.md); broker.key\n"
    "# must be readable by user mosquitto.\n#\n${broker_conf}")
  install(FILES ${pkg_bin}/mosquitto-pitstop.conf DESTINATION /etc/mosquitto/conf.d
    RENAME pitstop.conf COMPONENT broker)
  if(TARGET pitstop_broker)
    install(TARGETS pitstop_broker LIBRARY DESTINATION ${PITSTOP_PLUGIN_DIR} COMPONENT broker)
  endif()
endif()

# Maintainer scripts, conffiles and copyright, per package.
foreach(entry "agent;pitstop-agent;/var/lib/pitstop-agent;0700;/etc/pitstop/agent.conf"
    "gateway;pitstop-gateway;/var/lib/pitstop;0750;/etc/pitstop/gateway.conf"
    "broker;pitstop-broker-config;;;/etc/mosquitto/conf.d/pitstop.conf")
  list(GET entry 0 comp)
  if(NOT comp IN_LIST pkg_components)
    continue()
  endif()
  list(GET entry 1 PKG)
  list(GET entry 2 STATE_DIR)
  list(GET entry 3 STATE_MODE)
  list(GET entry 4 CONF)
  set(UNIT ${PKG}.service)
  set(dir ${pkg_bin}/${comp})
  string(TOUPPER ${comp} COMP)
  file(WRITE ${dir}/conffiles "${CONF}\n")
  if(comp STREQUAL "gateway")
    file(APPEND ${dir}/conffiles "/etc/pitstop/promotions.rules\n")
  endif()
  if(comp STREQUAL "broker")
    configure_file(${pkg_src}/debian/broker-postinst.in ${dir}/postinst @ONLY)
    set(scripts ${dir}/postinst)
  else()
    foreach(s postinst prerm postrm)
      configure_file(${pkg_src}/debian/${s}.in ${dir}/${s} @ONLY)
    endforeach()
    set(scripts ${dir}/postinst ${dir}/prerm ${dir}/postrm)
  endif()
  file(CHMOD ${scripts} FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
    GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_EXTRA ${scripts} ${dir}/conffiles)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_NAME ${PKG})
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${PKG} COMPONENT ${comp})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pitstop)
set(CPACK_PACKAGE_VENDOR "Pitstop")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${pkg_components})
if(CMAKE_CROSSCOMPILING)
  # dpkg-shlibdeps and dpkg --print-architecture describe the build host.
  if(CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
  endif()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "Pitstop maintainers <pitstop@example.com>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "gpsd")
# The console loads Leaflet and Chart.js from Debian (javascript_dir).
set(CPACK_DEBIAN_GATEWAY_PACKAGE_DEPENDS "adduser, libjs-leaflet, libjs-chart.js")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_SUGGESTS "pitstop-broker-config, postgresql")
set(CPACK_DEBIAN_BROKER_PACKAGE_DEPENDS "mosquitto (>= 2.0)")
set(CPACK_DEBIAN_SCREEN_PACKAGE_DEPENDS "pitstop-agent")
set(CPACK_COMPONENT_SCREEN_DESCRIPTION "Pitstop reference in-car screen
pitstop-screen serves one page for a 1280x720 head-unit screen on
127.0.0.1: the offers the agent may show now, live, with Accept and Dismiss,
day and night themes. It talks to the agent's HMI socket (docs/hmi.md).")
set(CPACK_COMPONENT_AGENT_DESCRIPTION "Pitstop in-car agent
pitstop-agent samples mileage, fuel and position (gpsd), keeps every sample
in SQLite until the gateway confirms it, sends delta-encoded batches over
MQTT v5 with mutual TLS, and shows verified, signed offers when it is safe.")
set(CPACK_COMPONENT_GATEWAY_DESCRIPTION "Pitstop gateway and pitstopctl
pitstop-gateway ingests a fleet's telemetry from an MQTT broker, stores it
in SQLite or PostgreSQL with each car's latest state and daily rollups, and
sends ECDSA-signed offers back. It serves an HTTP API and a web console
(users, roles, fleets, a live map). pitstopctl makes the fleet PKI, manages
users and fleets through the API and shows counters and vehicles.")
set(CPACK_COMPONENT_BROKER_DESCRIPTION "Pitstop configuration for mosquitto
A conf.d snippet for Debian's mosquitto 2: TLS with client certificates
from the Pitstop fleet PKI, queue and packet limits, and the Pitstop broker
plugin that decides who may publish and subscribe to what.")
include(CPack)
