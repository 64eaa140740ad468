// SIGTERM/SIGINT handling for long-running commands: block the stop signals in every thread
// (call before starting any), then wait for one on the main thread.
#pragma once

namespace galley {

// Blocks SIGTERM and SIGINT for this thread and the threads it starts; ignores SIGPIPE.
void BlockStopSignals();
// Waits until SIGTERM or SIGINT arrives; returns it.
int WaitForStopSignal();
const char* StopSignalName(int sig);

}  // namespace galley
