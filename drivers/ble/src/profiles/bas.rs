//! placeholder: written by the profile work
