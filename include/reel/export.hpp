// Symbol visibility for the shared library: everything is hidden unless marked REEL_API.
#pragma once
#if defined(_WIN32)
#  if defined(REEL_BUILDING_LIBRARY)
#    define REEL_API __declspec(dllexport)
#  else
#    define REEL_API __declspec(dllimport)
#  endif
#else
#  define REEL_API __attribute__((visibility("default")))
#endif
