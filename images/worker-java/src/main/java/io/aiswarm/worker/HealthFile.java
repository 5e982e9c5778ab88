package io.aiswarm.worker;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The liveness file: the worker writes the current epoch milliseconds on every heartbeat; the
 * image's HEALTHCHECK ({@link Healthcheck}) checks it is fresh.
 */
public final class HealthFile {
    private final Path path;

    public HealthFile(Path path) {
        this.path = path;
    }

    public void write(long nowMs) throws IOException {
        // Write then rename, so the checker never reads a half-written number.
        Path parent = path.toAbsolutePath().getParent();
        Path temp = Files.createTempFile(parent, ".health", ".tmp");
        try {
            Files.writeString(temp, Long.toString(nowMs), StandardCharsets.US_ASCII);
            Files.move(temp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** The age of the last write in ms at {@code nowMs}; the file's mtime if its content is not a number. */
    public long ageMs(long nowMs) throws IOException {
        String content = Files.readString(path, StandardCharsets.US_ASCII).trim();
        long written;
        try {
            written = Long.parseLong(content);
        } catch (NumberFormatException e) {
            written = Files.getLastModifiedTime(path).toMillis();
        }
        return nowMs - written;
    }
}
