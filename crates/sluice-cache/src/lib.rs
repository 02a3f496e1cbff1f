//! Response and score caches (moka). Not built yet: today every request is scored and answered anew.
