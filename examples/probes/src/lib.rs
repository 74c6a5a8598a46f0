//! The skeletons of the example BPF programs, one module each.

macro_rules! skeleton {
    ($name:ident) => {
        #[allow(clippy::all, missing_docs)]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", stringify!($name), ".skel.rs"));
        }
    };
}

skeleton!(ringbuf);
skeleton!(bounded_loop);
skeleton!(fentry);
skeleton!(task_state);
skeleton!(task_state_guarded);
