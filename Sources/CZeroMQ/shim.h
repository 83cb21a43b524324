#ifndef SWIFTRAIN_CZEROMQ_SHIM_H
#define SWIFTRAIN_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
