// agree(): one status for every rank. The lowest failing rank's error (code and message) is
// broadcast and thrown on every rank, prefixed once with the rank it came from.
#include <new>
#include <string>

#include "reel/distributed.hpp"
#include "reel/status.hpp"

namespace reel {

namespace {

// An error every rank already holds (thrown by agree): not prefixed again when it meets
// another agree on its way out.
class AgreedError final : public Error {
 public:
  using Error::Error;
};

}  // namespace

void agree(Communicator& comm, std::exception_ptr local) {
  StatusCode code = StatusCode::ok;
  std::string message;
  bool agreed = false;
  if (local) {
    try {
      std::rethrow_exception(local);
    } catch (const AgreedError& e) {
      code = e.code(), message = e.what(), agreed = true;
    } catch (const Error& e) {
      code = e.code(), message = e.what();
    } catch (const std::bad_alloc&) {
      code = StatusCode::out_of_memory, message = "out of memory";
    } catch (const std::exception& e) {
      code = StatusCode::internal, message = e.what();
    } catch (...) {
      code = StatusCode::internal, message = "an unknown exception";
    }
  }
  const int size = comm.size(), rank = comm.rank();
  int64_t lowest[1] = {local ? int64_t(size - rank) : 0};  // the max picks the lowest failing rank
  comm.all_reduce_max(lowest);
  if (lowest[0] == 0) return;
  const int root = size - int(lowest[0]);
  int64_t header[3] = {int64_t(code), int64_t(message.size()), agreed ? 1 : 0};
  comm.broadcast(header, sizeof header, root);
  std::string text(size_t(header[1]), '\0');
  if (rank == root) text = message;
  if (!text.empty()) comm.broadcast(text.data(), text.size(), root);
  if (header[2] == 0) text = "rank " + std::to_string(root) + " of " + std::to_string(size) + ": " + text;
  throw AgreedError(StatusCode(header[0]), text);
}

#ifndef REEL_HAVE_NCCL
bool nccl_built() noexcept { return false; }
std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator>, int) {
  throw Error(StatusCode::unsupported, "this reel was built without NCCL (configure with REEL_NCCL=ON on a machine "
                                       "with the CUDA toolkit and NCCL)");
}
#endif

}  // namespace reel
