package io.aiswarm.worker;

import io.aiswarm.v1.CredentialReply;
import io.aiswarm.v1.CredentialRequest;
import io.aiswarm.v1.ResultAck;
import io.aiswarm.v1.TaskResult;
import io.aiswarm.v1.WorkerCallbackGrpc;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A small but real WorkerCallback server on 127.0.0.1 standing in for the TypeScript master in
 * the gRPC client's tests: it checks the bearer token like the master does, records every call,
 * and can be told to fail the first SendResult calls with a given status. (The worker process
 * against a scriptable master is tested by tests/conformance/worker-faults.test.ts.)
 */
final class FakeMaster implements AutoCloseable {
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private static final Context.Key<String> SEEN_AUTHORIZATION = Context.key("authorization");

    final BlockingQueue<TaskResult> results = new LinkedBlockingQueue<>();
    final BlockingQueue<CredentialRequest> credentialRequests = new LinkedBlockingQueue<>();
    final List<String> rejectedAuthorizations = new ArrayList<>();
    private final Map<String, String> userKeys = new HashMap<>();
    private final String token;
    private final Server server;
    private volatile int failuresLeft;
    private volatile Status failWith = Status.UNAVAILABLE;

    FakeMaster(String token) throws Exception {
        this.token = token;
        this.server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(new Service(), new TokenCheck()))
                .build()
                .start();
    }

    String address() {
        return "127.0.0.1:" + server.getPort();
    }

    /** The next {@code count} SendResult calls fail with {@code status}. */
    void failNextResults(int count, Status status) {
        this.failWith = status;
        this.failuresLeft = count;
    }

    synchronized void giveUserKey(String taskId, String key) {
        userKeys.put(taskId, key);
    }

    TaskResult awaitResult(long timeoutMs) throws InterruptedException {
        TaskResult result = results.poll(timeoutMs, TimeUnit.MILLISECONDS);
        if (result == null) {
            throw new AssertionError("no SendResult within " + timeoutMs + " ms");
        }
        return result;
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    /** UNAUTHENTICATED unless "authorization: Bearer <token>", as docs/protocol.md asks of the master. */
    private final class TokenCheck implements ServerInterceptor {
        @Override
        public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                           ServerCallHandler<Q, R> next) {
            String authorization = headers.get(AUTHORIZATION);
            if (!("Bearer " + token).equals(authorization)) {
                synchronized (rejectedAuthorizations) {
                    rejectedAuthorizations.add(String.valueOf(authorization));
                }
                call.close(Status.UNAUTHENTICATED.withDescription("missing or wrong token"), new Metadata());
                return new ServerCall.Listener<>() {
                };
            }
            Context context = Context.current().withValue(SEEN_AUTHORIZATION, authorization);
            return Contexts.interceptCall(context, call, headers, next);
        }
    }

    private final class Service extends WorkerCallbackGrpc.WorkerCallbackImplBase {
        @Override
        public void sendResult(TaskResult request, StreamObserver<ResultAck> reply) {
            if (failuresLeft > 0) {
                failuresLeft--;
                reply.onError(failWith.asRuntimeException());
                return;
            }
            results.add(request);
            reply.onNext(ResultAck.newBuilder().setAccepted(true).build());
            reply.onCompleted();
        }

        @Override
        public void getTaskCredential(CredentialRequest request, StreamObserver<CredentialReply> reply) {
            credentialRequests.add(request);
            String key;
            synchronized (FakeMaster.this) {
                key = userKeys.get(request.getTaskId());
            }
            CredentialReply.Builder answer = CredentialReply.newBuilder().setPresent(key != null);
            if (key != null) {
                answer.setApiKey(key);
            }
            reply.onNext(answer.build());
            reply.onCompleted();
        }
    }
}
