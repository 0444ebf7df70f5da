//! Generates the gRPC code of `schema/proto/*.proto` with a vendored `protoc`,
//! so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; tonic-prost-build reads PROTOC.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", protoc)
    };
    println!("cargo:rerun-if-changed=../../schema/proto");
    tonic_prost_build::configure()
        .build_transport(true)
        .compile_protos(
            &["../../schema/proto/inventory.proto"],
            &["../../schema/proto"],
        )?;
    Ok(())
}
