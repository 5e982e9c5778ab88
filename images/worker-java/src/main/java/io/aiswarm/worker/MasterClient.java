package io.aiswarm.worker;

import io.aiswarm.v1.CredentialReply;
import io.aiswarm.v1.CredentialRequest;
import io.aiswarm.v1.ResultAck;
import io.aiswarm.v1.TaskResult;
import io.aiswarm.v1.WorkerCallbackGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/** The worker's side of WorkerCallback: every call carries the token and a 5 s deadline. */
public final class MasterClient implements AutoCloseable {
    static final long CALL_DEADLINE_MS = 5_000;
    private static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    /** Waits between retries; replaceable so a test can observe the schedule. */
    @FunctionalInterface
    interface Sleeper {
        void sleep(long ms) throws InterruptedException;
    }

    /** gRPC keepalive: the ping interval, and how long a ping may go unanswered (docs/protocol.md, rule 5). */
    static final long KEEPALIVE_TIME_S = 10;
    static final long KEEPALIVE_TIMEOUT_S = 5;

    private final ManagedChannel channel;
    private final WorkerCallbackGrpc.WorkerCallbackBlockingStub stub;
    private final LongSupplier clock;
    private final Sleeper sleeper;

    public MasterClient(String target, String token) {
        this(target, token, System::currentTimeMillis, Thread::sleep);
    }

    MasterClient(String target, String token, LongSupplier clock, Sleeper sleeper) {
        // The master speaks plaintext gRPC inside the overlay network; the token authenticates.
        // Keepalive (docs/protocol.md, rule 5): a ping every 10 s, even between calls; a connection whose ping
        // goes unanswered for 5 s is dropped. Without it a connection to a master whose VM is gone (silence, no
        // FIN) looks open for ever, every call on it times out, and the channel never looks up the leader again.
        this.channel = NettyChannelBuilder.forTarget(target)
                .usePlaintext()
                .keepAliveTime(KEEPALIVE_TIME_S, TimeUnit.SECONDS)
                .keepAliveTimeout(KEEPALIVE_TIMEOUT_S, TimeUnit.SECONDS)
                .keepAliveWithoutCalls(true)
                .build();
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + token);
        this.stub = WorkerCallbackGrpc.newBlockingStub(channel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
        this.clock = clock;
        this.sleeper = sleeper;
    }

    /** The user's key for a task, if the master still has one. Throws the gRPC failure as is. */
    public Optional<String> fetchCredential(String taskId, String workerId) {
        CredentialReply reply = stub.withDeadlineAfter(CALL_DEADLINE_MS, TimeUnit.MILLISECONDS)
                .getTaskCredential(CredentialRequest.newBuilder().setTaskId(taskId).setWorkerId(workerId).build());
        return reply.getPresent() && !reply.getApiKey().isEmpty() ? Optional.of(reply.getApiKey()) : Optional.empty();
    }

    /**
     * Sends the result, retrying UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED with
     * {@link Backoff} until {@code retryDeadlineMs} has passed. Other codes end it at once.
     */
    public SendOutcome sendResult(TaskResult result, long retryDeadlineMs) throws InterruptedException {
        long giveUpAt = clock.getAsLong() + retryDeadlineMs;
        for (int attempt = 1; ; attempt++) {
            try {
                ResultAck ack = stub.withDeadlineAfter(CALL_DEADLINE_MS, TimeUnit.MILLISECONDS).sendResult(result);
                return SendOutcome.acknowledged(ack, attempt);
            } catch (StatusRuntimeException e) {
                Status status = e.getStatus();
                long remaining = giveUpAt - clock.getAsLong();
                if (!Backoff.isRetryable(status.getCode()) || remaining <= 0) {
                    return SendOutcome.failed(status, attempt);
                }
                sleeper.sleep(Math.min(Backoff.delayMs(attempt), remaining));
            }
        }
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(1, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
