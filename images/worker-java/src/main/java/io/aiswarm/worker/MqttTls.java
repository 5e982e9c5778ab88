package io.aiswarm.worker;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import javax.net.SocketFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

/** The TLS socket factory for MQTT_TLS=true: the JVM's trust store, or only the CAs in MQTT_CA_FILE. */
final class MqttTls {
    private MqttTls() {
    }

    static SocketFactory socketFactory(Path caFile) throws ConfigException {
        if (caFile == null) {
            return SSLSocketFactory.getDefault();
        }
        try (InputStream in = Files.newInputStream(caFile)) {
            KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
            trusted.load(null, null);
            int index = 0;
            for (Certificate certificate : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trusted.setCertificateEntry("ca-" + index++, certificate);
            }
            if (index == 0) {
                throw new ConfigException("MQTT_CA_FILE", "holds no PEM certificate: " + caFile);
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(trusted);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context.getSocketFactory();
        } catch (IOException e) {
            throw new ConfigException("MQTT_CA_FILE", "names a file that cannot be read: " + caFile);
        } catch (GeneralSecurityException e) {
            throw new ConfigException("MQTT_CA_FILE", "is not a usable CA bundle: " + caFile);
        }
    }
}
