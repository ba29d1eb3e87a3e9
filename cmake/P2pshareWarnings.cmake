# Warnings and sanitizers for p2pshare's own targets, in one place.
function(p2pshare_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wold-style-cast -Wcast-align -Woverloaded-virtual)
  # GCC 12 reports -Wrestrict false positives inside std::string's operator+ at -O3
  # (GCC bug 105329), which -Werror turns into a failed release build.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(P2PSHARE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(P2PSHARE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(P2PSHARE_TSAN)
  # Asio uses std::atomic_thread_fence, which TSan does not model; GCC warns about each use.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
endif()
